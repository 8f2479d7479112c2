//! Money: an integer number of minor units and an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

/// The largest amount accepted anywhere (ten billion in major units of a two-decimal currency).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Validate)]
pub struct Money {
    #[validate(range(
        min = 0,
        max = "MAX_AMOUNT",
        message = "must be 0 or more minor units, at most 10^12"
    ))]
    pub amount: i64,
    #[validate(custom(function = "currency"))]
    pub currency: String,
}

/// ISO 4217 codes: three upper-case letters.
pub fn currency(code: &str) -> Result<(), ValidationError> {
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ValidationError::new("currency")
            .with_message("must be an ISO 4217 code such as USD or IRR".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_bounded_minor_units_and_currencies_are_iso_codes() {
        let money = |amount, currency: &str| Money {
            amount,
            currency: currency.to_owned(),
        };
        assert!(money(1999, "USD").validate().is_ok());
        assert!(money(0, "IRR").validate().is_ok());
        assert!(money(-1, "USD").validate().is_err());
        assert!(money(MAX_AMOUNT + 1, "USD").validate().is_err());
        assert!(money(1, "usd").validate().is_err());
        assert!(money(1, "DOLLAR").validate().is_err());
    }
}
