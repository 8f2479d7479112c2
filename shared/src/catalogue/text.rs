//! Text normalisation for search, so that the same word matches however it was typed:
//! Arabic and Persian forms of a letter are one letter (ي/ی, ك/ک, أ/إ/آ/ا), diacritics are
//! dropped (Arabic harakat and Latin accents alike), Persian and Arabic-Indic digits are ASCII
//! digits, case does not matter, and the zero-width non-joiner separates words.

use unicode_normalization::UnicodeNormalization;

/// The longest token indexed; longer words are cut (keys stay small, matches stay exact
/// enough).
pub const MAX_TOKEN_CHARS: usize = 40;

fn fold_char(c: char) -> Option<char> {
    Some(match c {
        // Yeh and Kaf: Arabic forms to Persian ones.
        'ي' | 'ى' | 'ئ' => 'ی',
        'ك' => 'ک',
        // Alef with hamza or madda, and the wasla: plain alef.
        'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
        'ؤ' => 'و',
        'ة' => 'ه',
        // Persian (U+06F0..) and Arabic-Indic (U+0660..) digits.
        '۰'..='۹' => char::from(b'0' + (c as u32 - '۰' as u32) as u8),
        '٠'..='٩' => char::from(b'0' + (c as u32 - '٠' as u32) as u8),
        // Tatweel (kashida) only stretches a word.
        'ـ' => return None,
        // The zero-width non-joiner joins parts of one written word: treat it as a space so
        // that "کتاب‌ها" finds "کتاب".
        '\u{200C}' => ' ',
        _ => c,
    })
}

/// Arabic harakat, the superscript alef, and Unicode combining marks (accents after NFD).
fn is_diacritic(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
        || unicode_normalization::char::is_combining_mark(c)
}

/// The normalised form of a text: folded letters and digits, no diacritics, lower case.
pub fn normalise(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_diacritic(*c))
        .filter_map(fold_char)
        .flat_map(char::to_lowercase)
        .nfc()
        .collect()
}

/// The distinct words of a text, normalised, in order of first appearance.
pub fn tokens(text: &str) -> Vec<String> {
    let normalised = normalise(text);
    let mut seen = std::collections::HashSet::new();
    normalised
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().take(MAX_TOKEN_CHARS).collect::<String>())
        .filter(|word| seen.insert(word.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arabic_and_persian_letters_fold_together() {
        assert_eq!(normalise("كتاب"), normalise("کتاب"));
        assert_eq!(normalise("علي"), normalise("علی"));
        assert_eq!(normalise("أحمد"), "احمد");
    }

    #[test]
    fn diacritics_and_tatweel_are_dropped() {
        assert_eq!(normalise("كِتَابٌ"), "کتاب");
        assert_eq!(normalise("کـــتاب"), "کتاب");
        assert_eq!(normalise("Café Crème"), "cafe creme");
    }

    #[test]
    fn digits_become_ascii() {
        assert_eq!(normalise("۱۲۳"), "123");
        assert_eq!(normalise("٤٥٦"), "456");
        assert_eq!(tokens("گوشی ۱۲ پرو"), ["گوشی", "12", "پرو"]);
    }

    #[test]
    fn words_split_on_punctuation_and_the_non_joiner() {
        assert_eq!(tokens("کتاب‌ها، و Books!"), ["کتاب", "ها", "و", "books"]);
        assert_eq!(tokens("the THE The"), ["the"]);
        assert!(tokens("  ... ").is_empty());
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent(text in "\\PC{0,40}") {
            let once = normalise(&text);
            prop_assert_eq!(normalise(&once), once);
        }

        #[test]
        fn tokens_are_normalised_and_unique(text in "\\PC{0,60}") {
            let words = tokens(&text);
            let mut unique = words.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), words.len());
            for word in words {
                prop_assert_eq!(normalise(&word), word.clone());
                prop_assert!(!word.is_empty() && word.chars().count() <= MAX_TOKEN_CHARS);
            }
        }
    }
}
