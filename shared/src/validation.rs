//! Turning `validator`'s reports into the API's list of failing fields, plus the field rules
//! that `validator` has no attribute for.

use std::sync::LazyLock;

use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{Error, FieldError};

/// Validates `input`, listing every failing field (sorted by name, so responses are stable).
pub fn check(input: &impl Validate) -> Result<(), Error> {
    input
        .validate()
        .map_err(|errors| Error::Validation(field_errors(&errors)))
}

/// Validates `input` and adds the failures of rules that span several fields.
pub fn check_with(input: &impl Validate, mut extra: Vec<FieldError>) -> Result<(), Error> {
    if let Err(errors) = input.validate() {
        extra.extend(field_errors(&errors));
    }
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_by(|a, b| a.field.cmp(&b.field));
    Err(Error::Validation(extra))
}

/// Flattens a `validator` report into one entry per failing rule.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    flatten("", errors, &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn flatten(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                out.extend(
                    list.iter()
                        .map(|error| FieldError::new(&path, describe(error))),
                );
            }
            ValidationErrorsKind::Struct(inner) => flatten(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

/// The message of a failed rule: the one given in the rule, or a readable default.
fn describe(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    match error.code.as_ref() {
        "required" => "is required".to_owned(),
        "email" => "must be a valid e-mail address".to_owned(),
        "length" => match (error.params.get("min"), error.params.get("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has the wrong length".to_owned(),
        },
        "must_match" => "does not match".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

fn rule(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// Usernames: ASCII letters and digits only (stored lower-case). Non-ASCII letters are refused
/// on purpose: look-alike characters from other scripts would let one user pose as another.
pub fn username(value: &str) -> Result<(), ValidationError> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(rule(
            "username",
            "may contain only letters a-z and digits 0-9",
        ))
    }
}

/// `validator`'s e-mail rule (the HTML5 form of an address: WHATWG's patterns, RFC 5321's
/// lengths, an IP literal or an internationalised domain allowed), over `regex_lite`. The
/// same patterns in `validator` compile the full `regex` engine into every function package
/// that checks an address, about 0.24 MB zipped; a test holds the two to the same answers.
pub fn is_email(value: &str) -> bool {
    static USER: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
        regex_lite::Regex::new(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+\z").expect("a valid pattern")
    });
    let Some((user, domain)) = value.rsplit_once('@') else {
        return false;
    };
    if user.chars().count() > 64 || domain.chars().count() > 255 || !USER.is_match(user) {
        return false;
    }
    is_email_domain(domain)
        || idna::domain_to_ascii(domain).is_ok_and(|ascii| is_email_domain(&ascii))
}

/// [`is_email`] as a `#[validate(custom(...))]` rule, failing with `validator`'s own `email`
/// code (so the same message).
pub fn email(value: &str) -> Result<(), ValidationError> {
    if is_email(value) {
        Ok(())
    } else {
        Err(ValidationError::new("email"))
    }
}

/// A host name, or an IP address in brackets (SMTP's address literal).
fn is_email_domain(domain: &str) -> bool {
    static HOST: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
        regex_lite::Regex::new(
            r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
        )
        .expect("a valid pattern")
    });
    static LITERAL: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
        regex_lite::Regex::new(r"\[([a-fA-F0-9:\.]+)\]\z").expect("a valid pattern")
    });
    HOST.is_match(domain)
        || LITERAL
            .captures(domain)
            .and_then(|literal| literal.get(1))
            .is_some_and(|ip| ip.as_str().parse::<std::net::IpAddr>().is_ok())
}

static E164: LazyLock<regex_lite::Regex> =
    LazyLock::new(|| regex_lite::Regex::new(r"^\+[1-9][0-9]{6,14}$").expect("a valid pattern"));

/// Phone numbers in E.164 form (`+989121234567`).
pub fn phone(value: &str) -> Result<(), ValidationError> {
    if E164.is_match(value) {
        Ok(())
    } else {
        Err(rule(
            "phone",
            "must be in international E.164 form, e.g. +14155550100",
        ))
    }
}

/// Free text fields (names, address lines): no control characters, not only spaces.
pub fn text(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        Err(rule("blank", "must not be blank"))
    } else if value.chars().any(char::is_control) {
        Err(rule("control", "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// Free text that may be left blank (an optional address line): no control characters.
pub fn optional_text(value: &str) -> Result<(), ValidationError> {
    if value.chars().any(char::is_control) {
        Err(rule("control", "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// Free text that may span lines (messages): as [`text`], but line breaks and tabs are fine.
pub fn multiline_text(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        Err(rule("blank", "must not be blank"))
    } else if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err(rule("control", "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// ISO 3166-1 alpha-2 country codes, upper-case (`IR`, `DE`).
pub fn country(value: &str) -> Result<(), ValidationError> {
    if value.len() == 2 && value.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(rule(
            "country",
            "must be an ISO 3166-1 alpha-2 code such as IR or US",
        ))
    }
}

/// Postal codes: letters, digits, spaces and dashes.
pub fn postal_code(value: &str) -> Result<(), ValidationError> {
    if !value.trim().is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        Ok(())
    } else {
        Err(rule(
            "postal_code",
            "may contain only letters, digits, spaces and dashes",
        ))
    }
}

/// For `#[serde(default, deserialize_with = "validation::nullable")]` on an
/// `Option<Option<T>>`: tells a field that is absent (`None`, leave it) from one that is
/// `null` (`Some(None)`, clear it).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// E-mail addresses compare case-insensitively and without surrounding space.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use validator::ValidateEmail;

    #[test]
    fn e_mail_addresses_are_checked_as_validator_checks_them() {
        for (address, valid) in [
            ("a@example.com", true),
            ("first.last+tag@sub.example.co", true),
            ("user@[127.0.0.1]", true),
            ("user@[::1]", true),
            ("user@bücher.example", true),
            ("user@[999.1.1.1]", false),
            ("no-at-sign", false),
            ("@example.com", false),
            ("a b@example.com", false),
            ("a@-example.com", false),
            ("a@example..com", false),
            ("", false),
        ] {
            assert_eq!(is_email(address), valid, "{address}");
            assert_eq!(address.validate_email(), valid, "validator on {address}");
        }
    }

    proptest! {
        #[test]
        fn e_mail_answers_match_validators(address in "[a-zA-Z0-9.@+_\\[\\]:ü -]{0,24}") {
            prop_assert_eq!(is_email(&address), address.validate_email(), "{}", address);
        }

        #[test]
        fn e_mail_answers_match_validators_on_address_shapes(
            user in "[a-z0-9.+-]{0,8}",
            domain in "[a-zü0-9.-]{0,12}|\\[[0-9a-f:.]{0,12}\\]",
        ) {
            let address = format!("{user}@{domain}");
            prop_assert_eq!(is_email(&address), address.validate_email(), "{}", address);
        }
    }

    #[test]
    fn usernames_are_ascii_alphanumeric() {
        assert!(username("alice42").is_ok());
        assert!(username("Alice").is_ok());
        for bad in ["", "al ice", "al_ice", "alice!", "аlice", "علی"] {
            assert!(username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phones_are_e164() {
        assert!(phone("+989121234567").is_ok());
        for bad in [
            "09121234567",
            "+0123456789",
            "+1",
            "+1 415 555 0100",
            "phone",
        ] {
            assert!(phone(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn countries_and_postal_codes() {
        assert!(country("IR").is_ok());
        assert!(country("ir").is_err() && country("IRN").is_err());
        assert!(postal_code("1234-56789").is_ok() && postal_code("SW1A 1AA").is_ok());
        assert!(postal_code("12;34").is_err() && postal_code(" ").is_err());
    }

    #[test]
    fn text_refuses_blank_and_control_characters() {
        assert!(text("علی رضایی").is_ok());
        assert!(text("   ").is_err());
        assert!(text("a\u{0}b").is_err());
    }

    proptest! {
        #[test]
        fn any_ascii_alphanumeric_username_is_valid(name in "[a-zA-Z0-9]{1,30}") {
            prop_assert!(username(&name).is_ok());
        }

        #[test]
        fn a_username_with_any_other_character_is_invalid(
            head in "[a-z0-9]{0,10}",
            bad in "[^a-zA-Z0-9]",
            tail in "[a-z0-9]{0,10}",
        ) {
            let candidate = format!("{head}{bad}{tail}");
            prop_assert!(username(&candidate).is_err());
        }

        #[test]
        fn email_normalisation_is_idempotent(email in "[ ]{0,2}[A-Za-z0-9.]{1,10}@[A-Za-z]{1,10}\\.[A-Za-z]{2,4}[ ]{0,2}") {
            let once = normalise_email(&email);
            prop_assert_eq!(normalise_email(&once), once.clone());
            prop_assert_eq!(once.clone(), once.to_lowercase());
            prop_assert_eq!(once.trim(), once.as_str());
        }
    }
}
