//! The decision as an iCalendar event, so it lands in everyone's calendar.
//!
//! Every value is cleaned here, whatever the store holds (older records, another writer): a CR
//! or LF that reached a property line would let a participant plant extra components (a second
//! VEVENT, an alarm) in every attendee's calendar. Text keeps its line breaks as the escaped
//! `\n` the format defines; one-line values lose them; the URL is re-parsed and left out unless
//! it is a plain http(s) link.

use icalendar::{Calendar, Component, Event, EventLike};

use super::{Decision, MeetupRecord};

/// Text with its line breaks as LF (escaped by the writer) and no other control characters.
fn multi_line(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c == '\r' { '\n' } else { c })
        .filter(|c| *c == '\n' || !is_unsafe(*c))
        .collect()
}

/// Text on one line: line breaks become spaces, other control characters go.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .filter(|c| !is_unsafe(*c))
        .collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// The link as a canonical http(s) URL (ASCII, no whitespace), or nothing.
fn safe_url(link: &str) -> Option<String> {
    let url = url::Url::parse(link.trim()).ok()?;
    let canonical = url.to_string();
    (matches!(url.scheme(), "http" | "https")
        && !canonical
            .chars()
            .any(|c| c.is_whitespace() || c.is_control()))
    .then_some(canonical)
}

pub fn decision_calendar(meetup: &MeetupRecord, decision: &Decision) -> String {
    let place = decision.place_id.as_deref().and_then(|id| meetup.place(id));
    let title = one_line(&meetup.title);
    let mut event = Event::new();
    event
        .uid(&format!("{}@beermeetup.io", one_line(&meetup.id)))
        .summary(&title)
        .starts(decision.start)
        .ends(decision.end)
        .timestamp(decision.decided_at);
    let description: Vec<String> = [meetup.description.as_deref(), decision.note.as_deref()]
        .into_iter()
        .flatten()
        .map(multi_line)
        .collect();
    if !description.is_empty() {
        event.description(&description.join("\n\n"));
    }
    if let Some(place) = place {
        let location = match &place.address {
            Some(address) => format!("{}, {}", place.name, address),
            None => place.name.clone(),
        };
        event.location(&one_line(&location));
        if let Some(link) = place.link.as_deref().and_then(safe_url) {
            event.url(&link);
        }
    }
    let mut calendar = Calendar::new();
    calendar.name(&title).push(event.done());
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PlaceRecord, Status};
    use chrono::{TimeZone, Utc};

    /// A finalized meetup whose stored values carry every kind of line break.
    fn poisoned() -> (MeetupRecord, Decision) {
        let at = |h| {
            Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0)
                .single()
                .expect("time")
        };
        let inject = "\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:pwned\r\nBEGIN:VALARM\r\nTRIGGER:-PT1M\r\nEND:VALARM";
        let place = PlaceRecord {
            id: "p1".into(),
            name: format!("Bar{inject}"),
            address: Some(format!("Street 1\rBEGIN:VEVENT{inject}")),
            link: Some(format!("https://bar.example/{inject}")),
            note: None,
            added_by_id: None,
            added_by_name: "Ben".into(),
        };
        let decision = Decision {
            start_slot_id: "s".into(),
            end_slot_id: "s".into(),
            start: at(18),
            end: at(19),
            place_id: Some("p1".into()),
            note: Some(format!("see you{inject}\rBEGIN:VEVENT")),
            decided_at: at(10),
        };
        let meetup = MeetupRecord {
            id: "abc".into(),
            admin_token_hash: String::new(),
            title: format!("Beer{inject}"),
            description: Some(format!("first\r\nsecond\rthird{inject}")),
            organizer_name: "Anna".into(),
            organizer_id: "o1".into(),
            time_zone: "UTC".into(),
            slot_minutes: 60,
            status: Status::Finalized,
            deadline: None,
            allow_participant_places: true,
            revision: 2,
            doc_version: 1,
            participant_count: 1,
            comment_count: 0,
            created_at: at(9),
            updated_at: at(10),
            slots: Vec::new(),
            places: vec![place],
            decision: Some(decision.clone()),
        };
        (meetup, decision)
    }

    #[test]
    fn stored_line_breaks_never_make_a_second_event() {
        let (meetup, decision) = poisoned();
        let text = decision_calendar(&meetup, &decision);
        let calendar: Calendar = text.parse().expect("the file parses as iCalendar");
        let events: Vec<_> = calendar
            .components
            .iter()
            .filter_map(|c| c.as_event())
            .collect();
        assert_eq!(events.len(), 1, "{text}");
        // The planted text stays inside values: no line of its own.
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.iter().filter(|l| **l == "BEGIN:VEVENT").count(), 1);
        assert!(
            !lines.iter().any(|l| l.starts_with("BEGIN:VALARM")),
            "{text}"
        );
        // Every physical line is a property or a fold: no bare CR or LF inside a value.
        for line in text.split("\r\n") {
            assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
        }
        // The description keeps its breaks, escaped.
        assert_eq!(
            events[0]
                .get_description()
                .map(|d| d.starts_with("first\nsecond\nthird")),
            Some(true)
        );
        // The link is one clean URL.
        assert!(
            events[0]
                .get_url()
                .is_some_and(|url| url.starts_with("https://bar.example/")
                    && !url.chars().any(char::is_whitespace))
        );
    }
}
