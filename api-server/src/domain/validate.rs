//! Small text rules shared by the commands.

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
    let bad_char = value
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t')));
    if bad_char {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
        return None;
    }
    Some(value.to_string())
}

/// A person's display name: 1..=60 characters, inner whitespace collapsed.
pub fn display_name(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    let collapsed = value.split_whitespace().collect::<Vec<_>>().join(" ");
    required_text(errors, field, &collapsed, super::limits::MAX_NAME_CHARS)
}

/// The case-insensitive key that makes names unique per meetup.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub fn link(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) -> Option<String> {
    let link = optional_text(errors, field, value, super::limits::MAX_LINK_CHARS)?;
    let lower = link.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || link.contains(' ') {
        errors.push(FieldError::new(field, "must be an http(s) link"));
        return None;
    }
    Some(link)
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
    fn time_zones_are_iana() {
        let mut errors = vec![];
        assert!(time_zone(&mut errors, "tz", "Europe/Berlin").is_some());
        assert!(time_zone(&mut errors, "tz", "Mars/Olympus").is_none());
    }
}
