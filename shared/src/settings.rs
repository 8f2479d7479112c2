//! Reading `BAZAAR_*` settings by name, with one typed error for every refused value.
//!
//! Every process (a Lambda function, the local server, a test) reads its configuration once,
//! through a [`Source`]: the process environment, or a list of pairs in tests. The readers here
//! parse and range-check one value each, so that every refusal names the setting, what it must
//! be and what it was.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A setting whose value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be {expected}, not {value:?}")]
pub struct InvalidSetting {
    pub name: String,
    pub expected: String,
    pub value: String,
}

impl InvalidSetting {
    pub fn new(name: &str, expected: impl Into<String>, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            expected: expected.into(),
            value: value.to_owned(),
        }
    }
}

/// Reads one setting by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where settings come from. Empty values count as unset, as a blank variable in a
/// deployment template usually means "not configured".
pub struct Source<'a> {
    lookup: Lookup<'a>,
}

impl<'a> Source<'a> {
    /// The process environment.
    pub fn env() -> Source<'static> {
        Source::new(|name| std::env::var(name).ok())
    }

    /// Any lookup by name (a map, another source with defaults added).
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// Fixed pairs (tests).
    pub fn pairs(pairs: &[(&str, &str)]) -> Source<'static> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Source::new(move |name| {
            owned
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, value)| value.clone())
        })
    }

    /// The value of `name`, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value of `name`, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A number in `range`, or `default` when unset.
    pub fn number<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, InvalidSetting>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<T>()
                .ok()
                .filter(|value| range.contains(value))
                .ok_or_else(|| {
                    InvalidSetting::new(
                        name,
                        format!("a whole number from {} to {}", range.start(), range.end()),
                        &text,
                    )
                }),
        }
    }

    /// `true`/`1` or `false`/`0`, or `default` when unset.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, InvalidSetting> {
        match self.get(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(InvalidSetting::new(name, "true or false", other)),
        }
    }

    /// A value parsed by `parse`, whose error message says what the value must be.
    pub fn parsed<T, E: Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, InvalidSetting> {
        self.get(name)
            .map(|text| {
                parse(&text).map_err(|error| InvalidSetting::new(name, error.to_string(), &text))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_range_checked_and_named() {
        let source = Source::pairs(&[("A", "7"), ("B", "0"), ("C", "many"), ("D", " ")]);
        assert_eq!(source.number("A", 1..=10, 3), Ok(7));
        assert_eq!(source.number("D", 1..=10, 3), Ok(3), "blank is unset");
        assert_eq!(source.number("Z", 1..=10, 3), Ok(3));
        for name in ["B", "C"] {
            let refused = source.number::<u32>(name, 1..=10, 3);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|error| error.to_string().starts_with(name)),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn flags_accept_only_true_or_false() {
        let source = Source::pairs(&[("A", "true"), ("B", "0"), ("C", "yes")]);
        assert_eq!(source.flag("A", false), Ok(true));
        assert_eq!(source.flag("B", true), Ok(false));
        assert_eq!(source.flag("Z", true), Ok(true));
        assert!(source.flag("C", true).is_err());
    }

    #[test]
    fn parsed_values_carry_the_parser_message() {
        let source = Source::pairs(&[("A", "x")]);
        let refused = source.parsed("A", |text| text.parse::<u8>());
        assert!(refused.is_err_and(|error| error.name == "A" && error.value == "x"));
        assert_eq!(source.parsed("Z", |text| text.parse::<u8>()), Ok(None));
    }
}
