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

impl Money {
    /// The amount in major units with the currency's number of decimals ("12.34 USD").
    pub fn display(&self) -> String {
        let decimals = minor_unit_digits(&self.currency);
        let sign = if self.amount < 0 { "-" } else { "" };
        let amount = self.amount.unsigned_abs();
        if decimals == 0 {
            return format!("{sign}{amount} {}", self.currency);
        }
        let scale = 10u64.pow(decimals);
        format!(
            "{sign}{}.{:0width$} {}",
            amount / scale,
            amount % scale,
            self.currency,
            width = decimals as usize
        )
    }
}

/// Decimals of a currency's minor unit (ISO 4217): 2 unless listed.
pub fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod display_tests {
    use super::Money;

    #[test]
    fn amounts_display_in_major_units() {
        let money = |amount, currency: &str| Money {
            amount,
            currency: currency.to_owned(),
        };
        assert_eq!(money(1999, "USD").display(), "19.99 USD");
        assert_eq!(money(5, "EUR").display(), "0.05 EUR");
        assert_eq!(money(1500, "JPY").display(), "1500 JPY");
        assert_eq!(money(1234, "KWD").display(), "1.234 KWD");
    }
}
