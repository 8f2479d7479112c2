//! Request bodies of the user endpoints and their validation rules. Every field is optional at
//! the type level so that a missing field is reported with the others, not as a parse error.

use serde::Deserialize;
use validator::Validate;

use crate::auth::common_passwords;
use crate::error::FieldError;
use crate::users::Role;
use crate::users::model::Language;
use crate::validation;

/// The longest password accepted: long enough for any passphrase, short enough that hashing
/// cannot be abused.
pub const MAX_PASSWORD: u64 = 128;

#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct RegisterRequest {
    #[validate(required, custom(function = "validation::email"), length(max = 254))]
    pub email: Option<String>,
    #[validate(
        required,
        length(min = 3, max = 30),
        custom(function = "validation::username")
    )]
    pub username: Option<String>,
    #[validate(
        required,
        length(min = 8, max = "MAX_PASSWORD"),
        custom(function = "common_passwords::not_common")
    )]
    pub password: Option<String>,
    #[validate(required)]
    pub password_confirm: Option<String>,
    #[validate(length(min = 1, max = 100), custom(function = "validation::text"))]
    pub first_name: Option<String>,
    #[validate(length(min = 1, max = 100), custom(function = "validation::text"))]
    pub last_name: Option<String>,
    #[validate(custom(function = "validation::phone"))]
    pub phone: Option<String>,
    /// `en` (the default) or `fa`: the language of notifications.
    pub language: Option<Language>,
}

#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct LoginRequest {
    #[validate(required, length(min = 1, max = 254))]
    pub email: Option<String>,
    #[validate(required, length(min = 1, max = "MAX_PASSWORD"))]
    pub password: Option<String>,
}

/// `PATCH /users/me`. Absent fields stay as they are; `null` clears an optional field.
#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct UpdateProfileRequest {
    #[serde(default, deserialize_with = "validation::nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validation::nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validation::nullable")]
    pub phone: Option<Option<String>>,
    #[validate(
        length(min = 8, max = "MAX_PASSWORD"),
        custom(function = "common_passwords::not_common")
    )]
    pub password: Option<String>,
    pub password_confirm: Option<String>,
    #[validate(length(min = 1, max = "MAX_PASSWORD"))]
    pub current_password: Option<String>,
    pub language: Option<Language>,
}

/// `PATCH /users/{id}` (admin).
#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct AdminUpdateRequest {
    pub is_active: Option<bool>,
    pub role: Option<Role>,
}

#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct AddressRequest {
    #[validate(length(min = 1, max = 200), custom(function = "validation::text"))]
    pub line1: Option<String>,
    /// May be blank (no second line), but is bounded as `line1` is.
    #[serde(default, deserialize_with = "validation::nullable")]
    #[validate(length(max = 200), custom(function = "validation::optional_text"))]
    pub line2: Option<Option<String>>,
    #[validate(length(min = 1, max = 100), custom(function = "validation::text"))]
    pub city: Option<String>,
    #[validate(length(min = 1, max = 100), custom(function = "validation::text"))]
    pub state: Option<String>,
    #[validate(
        length(min = 1, max = 20),
        custom(function = "validation::postal_code")
    )]
    pub postal_code: Option<String>,
    #[validate(custom(function = "validation::country"))]
    pub country: Option<String>,
    pub is_default: Option<bool>,
}

/// The confirmation must repeat the password (when both are given; a missing one is reported
/// by the field rules).
pub fn confirmation_mismatch(
    password: &Option<String>,
    confirm: &Option<String>,
) -> Vec<FieldError> {
    match (password, confirm) {
        (Some(password), Some(confirm)) if password != confirm => {
            vec![FieldError::new(
                "password_confirm",
                "does not match password",
            )]
        }
        _ => Vec::new(),
    }
}
