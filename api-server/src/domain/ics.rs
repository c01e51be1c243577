//! The decision as an iCalendar event, so it lands in everyone's calendar.
//!
//! Every value is cleaned here, whatever the store holds (older records, another writer): a CR
//! or LF that reached a property line would let a participant plant extra components (a second
//! VEVENT, an alarm) in every attendee's calendar. Text keeps its line breaks as the escaped
//! `\n` the format defines; one-line values lose them; URLs are re-parsed and left out unless
//! they are plain http(s) links.
//!
//! The event links back to the meetup page (URL, and the last line of the description), where
//! the place's own link also goes. The calendar carries no `X-WR-CALNAME`: with it some
//! calendar apps offer to make a new calendar for this one event.

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

/// The decided meetup as an `.ics` file; `meetup_url` is the meetup page's public address.
pub fn decision_calendar(
    meetup: &MeetupRecord,
    decision: &Decision,
    meetup_url: Option<&str>,
) -> String {
    let place = decision.place_id.as_deref().and_then(|id| meetup.place(id));
    let title = one_line(&meetup.title);
    let mut event = Event::new();
    event
        .uid(&format!("{}@beermeetup.io", one_line(&meetup.id)))
        .summary(&title)
        .starts(decision.start)
        .ends(decision.end)
        .timestamp(decision.decided_at);
    let meetup_url = meetup_url.and_then(safe_url);
    let place_link = place.and_then(|p| p.link.as_deref()).and_then(safe_url);
    let mut description: Vec<String> = [meetup.description.as_deref(), decision.note.as_deref()]
        .into_iter()
        .flatten()
        .map(multi_line)
        .collect();
    if let Some(link) = &place_link {
        description.push(format!("🍺 {link}"));
    }
    if let Some(url) = &meetup_url {
        description.push(format!("🗳 {url}"));
    }
    if !description.is_empty() {
        event.description(&description.join("\n\n"));
    }
    if let Some(place) = place {
        let location = match &place.address {
            Some(address) => format!("{}, {}", place.name, address),
            None => place.name.clone(),
        };
        event.location(&one_line(&location));
    }
    if let Some(url) = meetup_url.as_deref().or(place_link.as_deref()) {
        event.url(url);
    }
    let mut calendar = Calendar::new();
    calendar.push(event.done());
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
        let text = decision_calendar(&meetup, &decision, Some("javascript:alert(1)"));
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
        // A poisoned page address is left out; the place's link is one clean URL.
        assert!(
            events[0]
                .get_url()
                .is_some_and(|url| url.starts_with("https://bar.example/")
                    && !url.chars().any(char::is_whitespace)),
            "{text}"
        );
    }

    #[test]
    fn the_event_links_back_to_the_meetup_page_and_names_no_calendar() {
        let (mut meetup, decision) = poisoned();
        meetup.places[0].link = Some("https://hops.example/menu".into());
        meetup.description = Some("Bring cash".into());
        let url = "https://beer.example/m/abc";
        let text = decision_calendar(&meetup, &decision, Some(url));
        let calendar: Calendar = text.parse().expect("the file parses as iCalendar");
        let event = calendar
            .components
            .iter()
            .find_map(|c| c.as_event())
            .expect("one event");
        assert_eq!(event.get_url(), Some(url));
        let description = event.get_description().expect("a description");
        assert!(description.starts_with("Bring cash"), "{description}");
        assert!(
            description.contains("https://hops.example/menu"),
            "{description}"
        );
        assert!(description.ends_with(url), "{description}");
        assert!(!text.contains("X-WR-CALNAME"), "{text}");
        assert!(calendar.get_name().is_none());
        // Without a page address the place's link is the event's URL.
        let text = decision_calendar(&meetup, &decision, None);
        let calendar: Calendar = text.parse().expect("parses");
        let event = calendar
            .components
            .iter()
            .find_map(|c| c.as_event())
            .expect("one event");
        assert_eq!(event.get_url(), Some("https://hops.example/menu"));
    }
}
