//! Refusal of commonly used passwords: a bundled list of the passwords that top published
//! breach-corpus frequency lists (the ones at least as long as our minimum), compared without
//! regard to case, plus passwords that are one character repeated. A strength estimator such
//! as zxcvbn would catch more, but its dictionaries add megabytes to every function binary
//! (and so to every cold start); the list costs a few kilobytes.

use std::collections::HashSet;
use std::sync::LazyLock;

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
});

/// The message a refused password gets.
pub const MESSAGE: &str =
    "is too common and easily guessed; choose a longer passphrase of several unrelated words";

/// Whether `password` is commonly used (and so is tried first by anyone guessing).
pub fn is_common(password: &str) -> bool {
    let lower = password.trim().to_lowercase();
    let mut chars = lower.chars();
    let repeated = chars
        .next()
        .is_some_and(|first| chars.all(|other| other == first));
    repeated || COMMON.contains(&lower)
}

/// The `validator` rule: refuses a commonly used password.
pub fn not_common(password: &str) -> Result<(), validator::ValidationError> {
    if is_common(password) {
        Err(validator::ValidationError::new("common_password").with_message(MESSAGE.into()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_recognised() {
        for common in [
            "password123",
            "Password1",
            "QWERTYUIOP",
            "12345678",
            "zzzzzzzzzz",
        ] {
            assert!(is_common(common), "{common} passed");
        }
        for fine in [
            "a long enough password",
            "password-omid",
            "admin-password-1",
            "correct horse battery",
        ] {
            assert!(!is_common(fine), "{fine} refused");
        }
    }
}
