//! Small text rules shared by the commands.
//!
//! Single-line fields (titles, names, addresses, links) take no control characters, no line or
//! paragraph separators and no bidi embeddings/overrides/isolates; multi-line fields (description,
//! notes, comments) may hold line breaks, stored as LF. Person names are stricter still: no
//! control characters, invisible and format characters dropped (except inside emoji sequences),
//! at least one visible character, and they are unique by their NFKC + case-folded form without
//! ignorables, so look-alikes (NFD, fullwidth, zero-width joiners, bidi overrides) are the same
//! name and get "name taken".

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{
    GeneralCategory, GeneralCategoryGroup, UnicodeEmoji, UnicodeGeneralCategory,
};

use super::FieldError;

/// Trims and checks a required text field: 1..=max characters, no control characters.
pub fn required_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
        return None;
    }
    check_length_and_chars(errors, field, value, max, false)
}

/// Like [`optional_text`] for a field that is one line (an address, a link).
pub fn optional_line(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    check_length_and_chars(errors, field, value, max, false)
}

/// Trims an optional text field; an empty string means "no value".
pub fn optional_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    check_length_and_chars(errors, field, value, max, true)
}

fn check_length_and_chars(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    allow_newlines: bool,
) -> Option<String> {
    let count = value.chars().count();
    if count > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters (got {count})"),
        ));
        return None;
    }
    let bad_char = value.chars().any(|c| {
        let line_break = c == '\n' || c == '\r';
        if allow_newlines && (line_break || c == '\t') {
            return false;
        }
        c.is_control() || is_line_separator(c) || is_bidi_control(c)
    });
    if bad_char {
        errors.push(FieldError::new(
            field,
            if allow_newlines {
                "must not contain control characters"
            } else {
                "must be one line without control characters"
            },
        ));
        return None;
    }
    // NFC so text typed on different systems is stored alike; CR LF and lone CR become LF.
    let value: String = value.nfc().collect();
    Some(if value.contains('\r') {
        value.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        value
    })
}

fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// Explicit bidi embeddings, overrides and isolates (they reorder what follows them).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{200E}' | '\u{200F}')
}

/// Characters that render as nothing (or as blank space that is not a space): format
/// characters (zero-width joiners, bidi marks, tags, soft hyphen, ...), variation selectors,
/// fillers, unassigned and private-use code points.
fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::Control
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A character a reader sees: a letter, number, punctuation or symbol.
fn is_visible(c: char) -> bool {
    !is_invisible(c)
        && matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter
                | GeneralCategoryGroup::Number
                | GeneralCategoryGroup::Punctuation
                | GeneralCategoryGroup::Symbol
        )
}

/// A person's display name: 1..=60 characters, inner whitespace collapsed, no control
/// characters, invisible characters dropped (see [`without_invisible`]), at least one visible
/// character. Dropping rather than refusing means "Zo\u{200D}ë" is simply "Zoë": taken if Zoë is
/// there, the same person on the page if not.
pub fn display_name(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed
        .chars()
        .any(|c| c.is_control() || is_line_separator(c))
    {
        errors.push(FieldError::new(
            field,
            "must be one line without control characters",
        ));
        return None;
    }
    let visible = without_invisible(&collapsed);
    let visible = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    if !collapsed.is_empty() && !visible.chars().any(is_visible) {
        errors.push(FieldError::new(
            field,
            "must contain at least one visible character",
        ));
        return None;
    }
    required_text(errors, field, &visible, super::limits::MAX_NAME_CHARS)
}

/// Drops characters that render as nothing, keeping the ones emoji are built from: a zero-width
/// joiner between two emoji (👩‍👩‍👧), a presentation selector after an emoji (🏳️), and tag
/// characters after a black flag (🏴 subdivision flags).
fn without_invisible(value: &str) -> String {
    let mut kept = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let previous = kept.chars().next_back();
        let keep = !is_invisible(c)
            || match c {
                '\u{200D}' => {
                    previous.is_some_and(|p| !p.is_ascii() && p.is_emoji_char_or_emoji_component())
                        && chars
                            .peek()
                            .is_some_and(|n| !n.is_ascii() && n.is_emoji_char())
                }
                '\u{FE0E}' | '\u{FE0F}' => previous.is_some_and(|p| p.is_emoji_char()),
                '\u{E0020}'..='\u{E007F}' => previous
                    .is_some_and(|p| p == '\u{1F3F4}' || ('\u{E0020}'..='\u{E007E}').contains(&p)),
                _ => false,
            };
        if keep {
            kept.push(c);
        }
    }
    kept
}

/// The key that makes names unique per meetup: NFKC, case-folded, NFKC again, ignorables
/// removed (Unicode's NFKC_Casefold), so names that look alike are one name.
pub fn name_key(name: &str) -> String {
    let compatible: String = name.nfkc().collect();
    caseless::default_case_fold_str(&compatible)
        .nfkc()
        .filter(|c| !is_invisible(*c))
        .collect()
}

/// An absolute http(s) URL with a host and no credentials, stored in its canonical form.
pub fn link(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) -> Option<String> {
    let link = optional_line(errors, field, value, super::limits::MAX_LINK_CHARS)?;
    let parsed = url::Url::parse(&link).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|host| !host.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
    });
    match parsed {
        Some(url) if !link.chars().any(char::is_whitespace) => {
            let canonical = url.to_string();
            if canonical.chars().count() > super::limits::MAX_LINK_CHARS {
                errors.push(FieldError::new(field, "is too long once encoded"));
                return None;
            }
            Some(canonical)
        }
        _ => {
            errors.push(FieldError::new(
                field,
                "must be an http(s) link such as https://example.org/bar",
            ));
            None
        }
    }
}

pub fn time_zone(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<chrono_tz::Tz> {
    match value.trim().parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("\"{value}\" is not an IANA time zone such as \"Europe/Berlin\""),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_trims_and_limits() {
        let mut errors = vec![];
        assert_eq!(
            required_text(&mut errors, "t", "  hi ", 5),
            Some("hi".into())
        );
        assert_eq!(required_text(&mut errors, "t", "   ", 5), None);
        assert_eq!(required_text(&mut errors, "t", "toolong", 5), None);
        assert_eq!(required_text(&mut errors, "t", "a\u{7}b", 5), None);
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn optional_text_treats_blank_as_none() {
        let mut errors = vec![];
        assert_eq!(optional_text(&mut errors, "d", Some("  "), 5), None);
        assert_eq!(optional_text(&mut errors, "d", None, 5), None);
        assert_eq!(
            optional_text(&mut errors, "d", Some("a\nb"), 5),
            Some("a\nb".into())
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn names_collapse_whitespace_and_fold_case() {
        let mut errors = vec![];
        assert_eq!(
            display_name(&mut errors, "name", "  Anna   Maria "),
            Some("Anna Maria".into())
        );
        assert_eq!(name_key("ÄNNA"), "änna");
        assert!(display_name(&mut errors, "name", &"x".repeat(61)).is_none());
    }

    #[test]
    fn links_must_be_http() {
        let mut errors = vec![];
        assert!(link(&mut errors, "link", Some("https://beer.example")).is_some());
        assert!(link(&mut errors, "link", Some("javascript:alert(1)")).is_none());
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn links_are_one_parsed_url() {
        let mut errors = vec![];
        for bad in [
            "https://a.example/\r\nBEGIN:VEVENT",
            "https://a.example/\nx",
            "https://a.example/ x",
            "http://",
            "https://user:pw@a.example/",
            "https:/\u{202E}a.example",
            "mailto:a@b.example",
        ] {
            assert!(link(&mut errors, "link", Some(bad)).is_none(), "{bad:?}");
        }
        assert_eq!(
            link(
                &mut errors,
                "link",
                Some("HTTPS://Beer.Example/a b".replace(' ', "%20").as_str())
            ),
            Some("https://beer.example/a%20b".into())
        );
    }

    #[test]
    fn single_line_fields_refuse_line_breaks_and_bidi_controls() {
        let mut errors = vec![];
        assert_eq!(
            optional_line(&mut errors, "address", Some("a\rb"), 50),
            None
        );
        assert_eq!(
            optional_line(&mut errors, "address", Some("a\u{2028}b"), 50),
            None
        );
        assert_eq!(required_text(&mut errors, "title", "a\u{202E}b", 50), None);
        assert_eq!(errors.len(), 3);
        // Multi-line fields keep their breaks, as LF.
        assert_eq!(
            optional_text(&mut errors, "note", Some("a\r\nb\rc"), 50),
            Some("a\nb\nc".into())
        );
    }

    #[test]
    fn look_alike_names_share_a_key_and_invisible_characters_are_dropped() {
        let key = name_key("Zoë");
        // NFD, fullwidth, upper case, ß vs ss.
        assert_eq!(name_key("Zoe\u{0308}"), key);
        assert_eq!(name_key("ＺＯË"), key);
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        assert_eq!(name_key("👍\u{FE0F}"), name_key("👍"));
        let mut errors = vec![];
        for hidden in [
            "Zo\u{200D}ë",
            "\u{202E}Zoë",
            "Zoë\u{E0041}",
            "Zo\u{FE0F}ë",
            "Z\u{00AD}oë",
            "\u{2066}Zoë\u{2069}",
            "Zoë\u{200B}",
        ] {
            let name = display_name(&mut errors, "name", hidden);
            assert_eq!(name.as_deref(), Some("Zoë"), "{hidden:?}");
            assert_eq!(name_key(hidden.trim()), key, "{hidden:?}");
        }
        assert!(errors.is_empty(), "{errors:?}");
        for bad in [
            "\u{200B}",
            "\u{3164}",
            "\u{0308}",
            "Zoë\u{0007}",
            "\u{202E}\u{200D}",
        ] {
            assert_eq!(display_name(&mut errors, "name", bad), None, "{bad:?}");
        }
        assert_eq!(errors.len(), 5);
        assert_eq!(
            display_name(&mut errors, "name", "李 小龍"),
            Some("李 小龍".into())
        );
        // Emoji keep what they are built from.
        for emoji in [
            "🍺",
            "👩\u{200D}👩\u{200D}👧 family",
            "🏳\u{FE0F}\u{200D}🌈 Kim",
            "👋🏽 Ana",
            "1\u{FE0F}\u{20E3}",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        ] {
            assert_eq!(
                display_name(&mut errors, "name", emoji).as_deref(),
                Some(emoji),
                "{emoji:?}"
            );
        }
        assert_eq!(errors.len(), 5);
    }

    #[test]
    fn time_zones_are_iana() {
        let mut errors = vec![];
        assert!(time_zone(&mut errors, "tz", "Europe/Berlin").is_some());
        assert!(time_zone(&mut errors, "tz", "Mars/Olympus").is_none());
    }
}
