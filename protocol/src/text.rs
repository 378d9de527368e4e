//! What a text that reaches other players' screens may contain: a display name (`name` of a
//! token, a guest's name) and a chat line.
//!
//! Both are Unicode text of any script, with three rules:
//! - no control character (C0, DEL, C1: a newline, a tab, an ANSI escape sequence's `ESC`);
//! - no bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which make
//!   text display in another order than it is written (a name that reads as someone else's, a
//!   chat line that spoofs the one after it). The marks U+200E and U+200F stay allowed;
//! - at least one visible character: not only spaces, zero-width or other invisible characters.
//!   The zero-width joiner and non-joiner, which emoji sequences and several scripts need, are
//!   allowed beside visible characters.

/// Why a text was refused (a message for the client).
pub type TextError = &'static str;

/// Whether `c` reorders the text around it when displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` shows nothing by itself: white space, and the invisible format characters
/// (zero-width space, joiners, marks, word joiner, invisible operators, the byte-order mark, the
/// Hangul fillers, the Mongolian vowel separator, the Braille blank).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Checks text of 1–`max` characters against the rules above.
fn check(text: &str, max: usize) -> Result<(), TextError> {
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err("wrong length");
    }
    if text.chars().any(char::is_control) {
        return Err("control characters are not allowed");
    }
    if text.chars().any(is_bidi_control) {
        return Err("bidirectional overrides and isolates are not allowed");
    }
    if text.chars().all(is_invisible) {
        return Err("it has no visible character");
    }
    Ok(())
}

/// The longest display name, in characters (`name` of a token).
pub const MAX_NAME_CHARS: usize = 64;

/// The longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 500;

/// Checks a display name of at most `max` characters (at most [`MAX_NAME_CHARS`]).
pub fn check_name(name: &str, max: usize) -> Result<(), TextError> {
    check(name, max.min(MAX_NAME_CHARS))
}

/// Checks a chat line.
pub fn check_chat(text: &str) -> Result<(), TextError> {
    check(text, MAX_CHAT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_script_and_emoji_pass() {
        for ok in [
            "Alice",
            "Zoë",
            "Анна",
            "李小龍",
            "محمد",
            "שרה\u{200F}",
            "🙂",
            "👨\u{200D}👩\u{200D}👧",
            "a b",
        ] {
            assert_eq!(check_name(ok, 32), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn invisible_reordering_and_control_texts_are_refused() {
        for bad in [
            "",
            " ",
            "\u{200B}",
            "\u{200B}\u{200D}\u{FEFF}",
            "\u{3164}",
            "\u{2800}",
            "evil\u{202E}gnp.exe",
            "\u{2067}x",
            "a\nb",
            "\u{1B}[31mred",
            "a\u{7F}",
            "a\u{85}",
        ] {
            assert!(check_name(bad, 32).is_err(), "{bad:?}");
            assert!(check_chat(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(33), 32).is_err());
        assert!(check_name(&"x".repeat(65), 100).is_err());
        assert!(check_chat(&"é".repeat(500)).is_ok());
        assert!(check_chat(&"é".repeat(501)).is_err());
    }
}
