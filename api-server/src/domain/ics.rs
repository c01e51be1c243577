//! The decision as an iCalendar event, so it lands in everyone's calendar.

use icalendar::{Calendar, Component, Event, EventLike};

use super::{Decision, MeetupRecord};

pub fn decision_calendar(meetup: &MeetupRecord, decision: &Decision) -> String {
    let place = decision.place_id.as_deref().and_then(|id| meetup.place(id));
    let mut event = Event::new();
    event
        .uid(&format!("{}@beermeetup.io", meetup.id))
        .summary(&meetup.title)
        .starts(decision.start)
        .ends(decision.end)
        .timestamp(decision.decided_at);
    let description: Vec<&str> = [meetup.description.as_deref(), decision.note.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !description.is_empty() {
        event.description(&description.join("\n\n"));
    }
    if let Some(place) = place {
        let location = match &place.address {
            Some(address) => format!("{}, {}", place.name, address),
            None => place.name.clone(),
        };
        event.location(&location);
        if let Some(link) = &place.link {
            event.url(link);
        }
    }
    let mut calendar = Calendar::new();
    calendar.name(&meetup.title).push(event.done());
    calendar.done().to_string()
}
