//! What clients send to the order endpoints, and the checks on it. Fields are optional in
//! the types so that every missing or invalid field is reported at once (422), not just the
//! first one serde trips over.

use crate::ids::AddressId;
use crate::ids::ProductId;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::error::{Error, FieldError, Result};
use crate::money::Money;
use crate::ports::payments::PaymentDetails;
use crate::validation;

/// The most distinct products in one order. Placing an order is one transaction: the order,
/// its history entry, its index entries, its event and idempotency record (6 items), plus
/// per line the product's reservation and possibly an out-of-stock event and its transition
/// record (3 items): at most 81, within DynamoDB's 100 items per transaction.
pub const MAX_LINES: usize = 25;
/// The most units of one product in one order.
pub const MAX_QUANTITY: i64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct LineRequest {
    #[validate(required, length(min = 1, max = 64))]
    pub product_id: Option<String>,
    #[validate(
        required,
        range(min = 1, max = "MAX_QUANTITY", message = "must be 1 to 1000")
    )]
    pub quantity: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct PlaceOrder {
    #[validate(
        required,
        length(min = 1, max = 25, message = "must have 1 to 25 lines"),
        nested
    )]
    pub items: Option<Vec<LineRequest>>,
    #[validate(required, length(min = 1, max = 64))]
    pub shipping_address_id: Option<String>,
}

/// One product's line after merging duplicates: (product id, total quantity, the first index
/// it appeared at in the request, for naming it in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedLine {
    pub product_id: ProductId,
    pub quantity: i64,
    pub index: usize,
}

impl PlaceOrder {
    /// The checked request: its lines merged by product (in first-seen order) and the address.
    pub fn checked(&self) -> Result<(Vec<MergedLine>, AddressId)> {
        validation::check(self)?;
        let mut merged: Vec<MergedLine> = Vec::new();
        for (index, line) in self.items.iter().flatten().enumerate() {
            // Only looked up: an unknown product, well formed or not, is the line's 422.
            let product_id = ProductId::trusted(line.product_id.clone().unwrap_or_default());

            let quantity = line.quantity.unwrap_or_default();
            match merged.iter_mut().find(|m| m.product_id == product_id) {
                Some(existing) => existing.quantity += quantity,
                None => merged.push(MergedLine {
                    product_id,
                    quantity,
                    index,
                }),
            }
        }
        let too_many: Vec<_> = merged
            .iter()
            .filter(|line| line.quantity > MAX_QUANTITY)
            .map(|line| {
                FieldError::new(
                    format!("items[{}].quantity", line.index),
                    "at most 1000 units of one product per order (lines for the same product are added up)",
                )
            })
            .collect();
        if !too_many.is_empty() {
            return Err(Error::Validation(too_many));
        }
        Ok((
            merged,
            AddressId::trusted(self.shipping_address_id.clone().unwrap_or_default()),
        ))
    }
}

/// `POST /orders/{id}/pay`: the method and its details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum PayRequest {
    Card {
        card_number: Option<String>,
        exp_month: Option<u32>,
        exp_year: Option<u32>,
        cvc: Option<String>,
    },
    Paypal {
        payer_email: Option<String>,
    },
    Crypto {
        currency: Option<String>,
        wallet_address: Option<String>,
    },
}

impl PayRequest {
    /// The details, checked for form (every failing field listed). `now` dates card expiry.
    pub fn details(&self, now: DateTime<Utc>) -> Result<PaymentDetails> {
        let mut errors = Vec::new();
        let details = match self {
            PayRequest::Card {
                card_number,
                exp_month,
                exp_year,
                cvc,
            } => card_details(
                card_number.as_deref(),
                *exp_month,
                *exp_year,
                cvc.as_deref(),
                now,
                &mut errors,
            ),
            PayRequest::Paypal { payer_email } => {
                paypal_details(payer_email.as_deref(), &mut errors)
            }
            PayRequest::Crypto {
                currency,
                wallet_address,
            } => crypto_details(currency.as_deref(), wallet_address.as_deref(), &mut errors),
        };
        if errors.is_empty() {
            Ok(details)
        } else {
            errors.sort_by(|a, b| a.field.cmp(&b.field));
            Err(Error::Validation(errors))
        }
    }
}

fn missing(field: &str) -> FieldError {
    FieldError::new(field, "is required")
}

/// A card's details (spaces and dashes dropped from its number); what is wrong with them
/// goes to `errors`.
fn card_details(
    card_number: Option<&str>,
    exp_month: Option<u32>,
    exp_year: Option<u32>,
    cvc: Option<&str>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> PaymentDetails {
    let number: String = card_number
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    match card_number {
        None => errors.push(missing("card_number")),
        Some(_) if !luhn(&number) => {
            errors.push(FieldError::new("card_number", "is not a valid card number"))
        }
        Some(_) => {}
    }
    errors.extend(expiry_errors(exp_month, exp_year, now));
    let cvc = cvc.unwrap_or_default().to_owned();
    if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(FieldError::new("cvc", "must be 3 or 4 digits"));
    }
    PaymentDetails::Card {
        number,
        exp_month: exp_month.unwrap_or_default(),
        exp_year: exp_year.unwrap_or_default(),
        cvc,
    }
}

/// What is wrong with a card's expiry month and year; a card expires at the end of its
/// month (the end of its year when the month is missing or wrong).
fn expiry_errors(
    exp_month: Option<u32>,
    exp_year: Option<u32>,
    now: DateTime<Utc>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match exp_month {
        None => errors.push(missing("exp_month")),
        Some(month) if !(1..=12).contains(&month) => {
            errors.push(FieldError::new("exp_month", "must be 1 to 12"))
        }
        Some(_) => {}
    }
    match exp_year {
        None => errors.push(missing("exp_year")),
        Some(year) if !(2000..=2100).contains(&year) => {
            errors.push(FieldError::new("exp_year", "must be a four-digit year"))
        }
        Some(year) => {
            let month = exp_month.unwrap_or(12);
            let today = (now.year() as u32, now.month());
            if (year, month) < today {
                errors.push(FieldError::new("exp_year", "the card has expired"));
            }
        }
    }
    errors
}

/// A PayPal payer's details (the address trimmed); what is wrong with them goes to `errors`.
fn paypal_details(payer_email: Option<&str>, errors: &mut Vec<FieldError>) -> PaymentDetails {
    let email = payer_email.unwrap_or_default().trim().to_owned();
    if payer_email.is_none() {
        errors.push(missing("payer_email"));
    } else if !validation::is_email(&email) || email.len() > 254 {
        errors.push(FieldError::new(
            "payer_email",
            "must be a valid e-mail address",
        ));
    }
    PaymentDetails::Paypal { payer_email: email }
}

/// A crypto payment's details (the wallet trimmed); what is wrong with them goes to `errors`.
fn crypto_details(
    currency: Option<&str>,
    wallet_address: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> PaymentDetails {
    let currency = currency.unwrap_or_default().to_owned();
    let wallet = wallet_address.unwrap_or_default().trim().to_owned();
    match currency.as_str() {
        "BTC" | "ETH" => {
            if wallet_address.is_none() {
                errors.push(missing("wallet_address"));
            } else if !wallet_is_valid(&currency, &wallet) {
                errors.push(FieldError::new(
                    "wallet_address",
                    match currency.as_str() {
                        "BTC" => "must be a Bitcoin address (bc1…, 1… or 3…)",
                        _ => "must be an Ethereum address (0x and 40 hex digits)",
                    },
                ));
            }
        }
        _ => errors.push(FieldError::new("currency", "must be BTC or ETH")),
    }
    PaymentDetails::Crypto {
        currency,
        wallet_address: wallet,
    }
}

/// The Luhn checksum every card number carries; 12 to 19 digits.
pub fn luhn(number: &str) -> bool {
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn wallet_is_valid(currency: &str, wallet: &str) -> bool {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    match currency {
        "BTC" => {
            if let Some(rest) = wallet.strip_prefix("bc1") {
                (11..=71).contains(&rest.len()) && rest.chars().all(|c| BECH32.contains(c))
            } else {
                (wallet.starts_with('1') || wallet.starts_with('3'))
                    && (26..=35).contains(&wallet.len())
                    && wallet.chars().all(|c| BASE58.contains(c))
            }
        }
        "ETH" => wallet
            .strip_prefix("0x")
            .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
        _ => false,
    }
}

/// `POST /orders/{id}/refund`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct RefundRequest {
    /// What to refund; everything not yet refunded when absent.
    #[validate(nested)]
    pub amount: Option<Money>,
    #[validate(length(min = 1, max = 500), custom(function = "validation::text"))]
    pub reason: Option<String>,
}

/// `POST /admin/orders/{id}/ship`: the carrier and tracking number, when they differ from
/// the ones assigned at payment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct ShipRequest {
    #[validate(length(min = 1, max = 100), custom(function = "validation::text"))]
    pub carrier: Option<String>,
    #[validate(length(min = 1, max = 64), custom(function = "validation::text"))]
    pub tracking_number: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_carry_a_luhn_checksum() {
        assert!(luhn("4242424242424242"));
        assert!(luhn("4000000000000002"));
        assert!(luhn("4000000000009987"));
        assert!(!luhn("4242424242424241"));
        assert!(!luhn("42424242"));
        assert!(!luhn("4242x24242424242"));
    }

    #[test]
    fn wallets_are_checked_per_currency() {
        assert!(wallet_is_valid(
            "ETH",
            "0x52908400098527886E0F7030069857D2E4169EE7"
        ));
        assert!(!wallet_is_valid(
            "ETH",
            "0x52908400098527886E0F7030069857D2E4169EE"
        ));
        assert!(wallet_is_valid(
            "BTC",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
        assert!(wallet_is_valid("BTC", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"));
        assert!(!wallet_is_valid(
            "BTC",
            "0x52908400098527886E0F7030069857D2E4169EE7"
        ));
    }

    #[test]
    fn expired_cards_and_every_bad_field_are_reported_together() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let request = PayRequest::Card {
            card_number: Some("1234".into()),
            exp_month: Some(10),
            exp_year: Some(2026),
            cvc: Some("12".into()),
        };
        let Err(Error::Validation(fields)) = request.details(now) else {
            panic!("expected a validation error");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["card_number", "cvc", "exp_year"]);
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// The messages `errors` holds, by field.
    fn messages(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|error| (error.field.as_str(), error.message.as_str()))
            .collect()
    }

    #[test]
    fn a_good_card_loses_its_spaces_and_dashes() {
        let mut errors = Vec::new();
        let details = card_details(
            Some("4242 4242-4242 4242"),
            Some(12),
            Some(2030),
            Some("1234"),
            at("2026-11-26T00:00:00Z"),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            details,
            PaymentDetails::Card {
                number: "4242424242424242".into(),
                exp_month: 12,
                exp_year: 2030,
                cvc: "1234".into(),
            }
        );
    }

    #[test]
    fn a_card_without_its_fields_names_each() {
        let mut errors = Vec::new();
        card_details(
            None,
            None,
            None,
            None,
            at("2026-11-26T00:00:00Z"),
            &mut errors,
        );
        assert_eq!(
            messages(&errors),
            [
                ("card_number", "is required"),
                ("exp_month", "is required"),
                ("exp_year", "is required"),
                ("cvc", "must be 3 or 4 digits"),
            ]
        );
        let mut errors = Vec::new();
        card_details(
            Some("4242424242424242"),
            Some(1),
            Some(2030),
            Some("12a"),
            at("2026-11-26T00:00:00Z"),
            &mut errors,
        );
        assert_eq!(messages(&errors), [("cvc", "must be 3 or 4 digits")]);
    }

    #[test]
    fn a_card_expires_at_the_end_of_its_month() {
        let now = at("2026-11-26T00:00:00Z");
        assert!(expiry_errors(Some(11), Some(2026), now).is_empty());
        assert_eq!(
            messages(&expiry_errors(Some(10), Some(2026), now)),
            [("exp_year", "the card has expired")]
        );
        assert_eq!(
            messages(&expiry_errors(Some(1), Some(2025), now)),
            [("exp_year", "the card has expired")]
        );
        // Without a usable month the card is taken to run to the end of its year.
        assert_eq!(
            messages(&expiry_errors(None, Some(2026), now)),
            [("exp_month", "is required")]
        );
        assert_eq!(
            messages(&expiry_errors(Some(13), Some(2026), now)),
            [("exp_month", "must be 1 to 12")]
        );
        assert_eq!(
            messages(&expiry_errors(Some(0), Some(26), now)),
            [
                ("exp_month", "must be 1 to 12"),
                ("exp_year", "must be a four-digit year")
            ]
        );
    }

    #[test]
    fn paypal_needs_a_valid_payer_address() {
        let mut errors = Vec::new();
        let details = paypal_details(Some("  ada@example.com "), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            details,
            PaymentDetails::Paypal {
                payer_email: "ada@example.com".into()
            }
        );
        let mut errors = Vec::new();
        paypal_details(None, &mut errors);
        assert_eq!(messages(&errors), [("payer_email", "is required")]);
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in ["not an address", "", long.as_str()] {
            let mut errors = Vec::new();
            paypal_details(Some(bad), &mut errors);
            assert_eq!(
                messages(&errors),
                [("payer_email", "must be a valid e-mail address")],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn crypto_needs_a_known_currency_and_its_kind_of_wallet() {
        let eth = "0x52908400098527886E0F7030069857D2E4169EE7";
        let mut errors = Vec::new();
        let details = crypto_details(Some("ETH"), Some(&format!(" {eth} ")), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            details,
            PaymentDetails::Crypto {
                currency: "ETH".into(),
                wallet_address: eth.into()
            }
        );
        let cases = [
            (Some("DOGE"), Some(eth), ("currency", "must be BTC or ETH")),
            (None, None, ("currency", "must be BTC or ETH")),
            (Some("BTC"), None, ("wallet_address", "is required")),
            (
                Some("BTC"),
                Some(eth),
                (
                    "wallet_address",
                    "must be a Bitcoin address (bc1…, 1… or 3…)",
                ),
            ),
            (
                Some("ETH"),
                Some("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
                (
                    "wallet_address",
                    "must be an Ethereum address (0x and 40 hex digits)",
                ),
            ),
        ];
        for (currency, wallet, expected) in cases {
            let mut errors = Vec::new();
            crypto_details(currency, wallet, &mut errors);
            assert_eq!(messages(&errors), [expected], "{currency:?} {wallet:?}");
        }
    }

    #[test]
    fn every_method_reports_its_fields_sorted() {
        let request = PayRequest::Crypto {
            currency: Some("XRP".into()),
            wallet_address: None,
        };
        let Err(Error::Validation(fields)) = request.details(at("2026-11-26T00:00:00Z")) else {
            panic!("expected a validation error");
        };
        assert_eq!(messages(&fields), [("currency", "must be BTC or ETH")]);
        let request = PayRequest::Paypal {
            payer_email: Some("ada@example.com".into()),
        };
        assert!(request.details(at("2026-11-26T00:00:00Z")).is_ok());
    }
}
