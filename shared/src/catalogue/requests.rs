//! Request bodies of the catalogue endpoints and their rules.

use serde::Deserialize;
use validator::{Validate, ValidationError};

use crate::money::Money;
use crate::validation;

/// The most units of one product the shop keeps track of.
pub const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct CreateCategory {
    #[validate(
        required,
        length(min = 1, max = 100),
        custom(function = "validation::text")
    )]
    pub name: Option<String>,
    #[validate(length(min = 1, max = 100), custom(function = "valid_slug"))]
    pub slug: Option<String>,
    #[validate(length(min = 1, max = 40))]
    pub parent_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct CreateProduct {
    #[validate(required, length(min = 1, max = 64), custom(function = "valid_sku"))]
    pub sku: Option<String>,
    #[validate(
        required,
        length(min = 1, max = 200),
        custom(function = "validation::text")
    )]
    pub name: Option<String>,
    #[validate(length(max = 5000))]
    pub description: Option<String>,
    #[validate(length(min = 1, max = 40))]
    pub category_id: Option<String>,
    #[validate(required, nested)]
    pub price: Option<Money>,
    #[validate(range(min = 0, max = "MAX_STOCK"))]
    pub stock: Option<i64>,
}

/// `PATCH /products/{id}`. The SKU cannot change; `category_id: null` removes the category.
#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct UpdateProduct {
    #[validate(length(min = 1, max = 200), custom(function = "validation::text"))]
    pub name: Option<String>,
    #[validate(length(max = 5000))]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "validation::nullable")]
    pub category_id: Option<Option<String>>,
    #[validate(nested)]
    pub price: Option<Money>,
    /// The version the client read (or send it as `If-Match`).
    pub version: Option<u64>,
    /// Present only to be refused with a clear message.
    pub sku: Option<String>,
}

/// `PUT /products/{id}/stock`: exactly one of `set` (units on hand) and `adjust` (±units).
#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct StockChange {
    #[validate(range(min = 0, max = "MAX_STOCK"))]
    pub set: Option<i64>,
    #[validate(range(min = "-MAX_STOCK", max = "MAX_STOCK"))]
    pub adjust: Option<i64>,
}

/// SKUs: letters, digits, dots, dashes and underscores.
pub fn valid_sku(value: &str) -> Result<(), ValidationError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(ValidationError::new("sku")
            .with_message("may contain only letters, digits, '.', '-' and '_'".into()))
    }
}

/// Slugs: lower-case letters (any script) and digits in words joined by single dashes.
pub fn valid_slug(value: &str) -> Result<(), ValidationError> {
    let word_ok = |word: &str| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_alphanumeric() && !c.is_uppercase())
    };
    if value.split('-').all(word_ok) {
        Ok(())
    } else {
        Err(ValidationError::new("slug")
            .with_message("must be lower-case words joined by dashes, e.g. summer-shoes".into()))
    }
}

/// A slug made from a name: its normalised words joined by dashes.
pub fn slug_of(name: &str) -> String {
    crate::catalogue::text::tokens(name).join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_skus() {
        assert!(valid_slug("summer-shoes").is_ok());
        assert!(valid_slug("کفش-تابستانی").is_ok());
        for bad in ["Summer", "a--b", "-a", "a-", "a b", "a_b"] {
            assert!(valid_slug(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(slug_of("Summer Shoes!"), "summer-shoes");
        assert_eq!(slug_of("كفش تابستاني"), "کفش-تابستانی");
        assert!(valid_sku("AB-12_x.3").is_ok());
        assert!(valid_sku("AB 12").is_err() && valid_sku("AB/12").is_err());
    }
}
