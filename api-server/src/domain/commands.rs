//! Commands: each takes the current records plus the request and returns the records to store,
//! or the reason it may not happen. Pure functions: time and randomness are arguments.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::ids::{CHILD_ID_LEN, MEETUP_ID_LEN, new_id};
use super::limits::*;
use super::slots::{self, Window};
use super::validate::{self, display_name, name_key, optional_line, optional_text, required_text};
use super::*;

/// Distinguishes an absent field (leave as is) from an explicit `null` (clear it).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateMeetup {
    /// 1..120 characters.
    pub title: String,
    pub description: Option<String>,
    /// The organizer's display name, 1..60 characters.
    pub organizer_name: String,
    /// IANA time zone, e.g. "Europe/Berlin".
    pub time_zone: String,
    /// 15, 30 or 60 (default 60).
    pub slot_minutes: Option<u32>,
    /// "YYYY-MM-DD" in the meetup's zone; default the next 7 days from today.
    pub days: Option<Vec<String>>,
    /// Daily window in the meetup's zone; default 18:00–23:00.
    pub window: Option<WindowInput>,
    /// Explicit UTC slots instead of days + window.
    pub slots: Option<Vec<SlotInput>>,
    pub deadline: Option<DateTime<Utc>>,
    pub allow_participant_places: Option<bool>,
    pub places: Option<Vec<PlaceInput>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct WindowInput {
    /// "HH:MM"
    pub start: String,
    /// "HH:MM"; at or before `start` means the window runs past midnight.
    pub end: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SlotInput {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceInput {
    pub name: String,
    pub address: Option<String>,
    pub link: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacePatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub link: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeetupPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null` removes the deadline.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub deadline: Option<Option<DateTime<Utc>>>,
    pub allow_participant_places: Option<bool>,
    /// "open" or "closed"; use `/finalize` to finalize.
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinMeetup {
    pub name: String,
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    /// Replaces the previous availability; slots left out mean "no".
    pub availability: Option<BTreeMap<String, Availability>>,
    /// Replaces the previous place votes (approval voting).
    pub place_votes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CommentInput {
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeInput {
    pub start_slot_id: String,
    /// Defaults to `startSlotId`: a single slot.
    pub end_slot_id: Option<String>,
    pub place_id: Option<String>,
    pub note: Option<String>,
}

/// A freshly created meetup and its organizer, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeetup {
    pub meetup: MeetupRecord,
    pub organizer: ParticipantRecord,
}

/// A person's display name (see `validate::display_name`) that also fits in
/// [`MAX_NAME_BYTES`], which bounds the size of the meetup view.
fn person_name(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    let name = display_name(errors, field, value)?;
    // As it is sent: `"` and `\` are escaped in JSON and take two bytes there.
    let json_bytes = name.len() + name.chars().filter(|c| matches!(c, '"' | '\\')).count();
    if json_bytes > MAX_NAME_BYTES {
        errors.push(FieldError::new(
            field,
            format!(
                "is too long: at most {MAX_NAME_BYTES} bytes of UTF-8 (\" and \\ count twice); \
                 use a shorter name"
            ),
        ));
        return None;
    }
    Some(name)
}

fn finish<T>(errors: Vec<FieldError>, value: Option<T>) -> Result<T, DomainError> {
    match value {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(DomainError::Invalid(errors)),
    }
}

fn require_admin(principal: &Principal) -> Result<(), DomainError> {
    if principal.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "Only the organizer (admin link) may do this.",
        ))
    }
}

fn require_open(meetup: &MeetupRecord, now: DateTime<Utc>) -> Result<(), DomainError> {
    match meetup.effective_status(now) {
        Status::Open => Ok(()),
        status => Err(DomainError::NotOpen(status)),
    }
}

/// How many days ahead a slot, day or deadline may lie.
pub const MAX_DAYS_AHEAD: i64 = 366;

/// How far ahead a slot, day or deadline may lie; also keeps every date far from chrono's
/// limits, so no arithmetic on it can overflow.
fn horizon() -> chrono::Duration {
    chrono::Duration::days(MAX_DAYS_AHEAD)
}

fn check_deadline(errors: &mut Vec<FieldError>, deadline: DateTime<Utc>, now: DateTime<Utc>) {
    if deadline <= now {
        errors.push(FieldError::new("deadline", "must be in the future"));
    } else if deadline > now + horizon() {
        errors.push(FieldError::new(
            "deadline",
            format!("must be within {MAX_DAYS_AHEAD} days from now"),
        ));
    }
}

struct PlaceFields {
    name: String,
    address: Option<String>,
    link: Option<String>,
    note: Option<String>,
}

fn place_fields(
    errors: &mut Vec<FieldError>,
    prefix: &str,
    input: &PlaceInput,
) -> Option<PlaceFields> {
    let name = required_text(
        errors,
        &format!("{prefix}name"),
        &input.name,
        MAX_PLACE_NAME_CHARS,
    );
    let before = errors.len();
    let address = optional_line(
        errors,
        &format!("{prefix}address"),
        input.address.as_deref(),
        MAX_ADDRESS_CHARS,
    );
    let link = validate::link(errors, &format!("{prefix}link"), input.link.as_deref());
    let note = optional_text(
        errors,
        &format!("{prefix}note"),
        input.note.as_deref(),
        MAX_NOTE_CHARS,
    );
    if errors.len() != before {
        return None;
    }
    Some(PlaceFields {
        name: name?,
        address,
        link,
        note,
    })
}

pub fn create_meetup(
    input: CreateMeetup,
    admin_token_hash: String,
    organizer_token_hash: String,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Result<NewMeetup, DomainError> {
    let mut errors = Vec::new();
    let title = required_text(&mut errors, "title", &input.title, MAX_TITLE_CHARS);
    let description = optional_text(
        &mut errors,
        "description",
        input.description.as_deref(),
        MAX_DESCRIPTION_CHARS,
    );
    let organizer_name = person_name(&mut errors, "organizerName", &input.organizer_name);
    let tz = validate::time_zone(&mut errors, "timeZone", &input.time_zone);
    let slot_minutes = input.slot_minutes.unwrap_or(60);
    if ![15, 30, 60].contains(&slot_minutes) {
        errors.push(FieldError::new("slotMinutes", "must be 15, 30 or 60"));
    }
    if let Some(deadline) = input.deadline {
        check_deadline(&mut errors, deadline, now);
    }
    let slots = tz.and_then(|tz| build_slots(&mut errors, &input, tz, slot_minutes, now));

    let places_input = input.places.unwrap_or_default();
    if places_input.len() > MAX_PLACES {
        errors.push(FieldError::new(
            "places",
            format!("at most {MAX_PLACES} places"),
        ));
    }
    let organizer_id = new_id(rng, CHILD_ID_LEN);
    let places: Vec<PlaceRecord> = places_input
        .iter()
        .enumerate()
        .filter_map(|(i, p)| place_fields(&mut errors, &format!("places[{i}]."), p))
        .map(|fields| PlaceRecord {
            id: new_id(rng, CHILD_ID_LEN),
            name: fields.name,
            address: fields.address,
            link: fields.link,
            note: fields.note,
            added_by_id: Some(organizer_id.clone()),
            added_by_name: organizer_name.clone().unwrap_or_default(),
        })
        .collect();

    let (title, organizer_name, tz, slots) =
        finish(errors, (|| Some((title?, organizer_name?, tz?, slots?)))())?;
    let meetup_id = new_id(rng, MEETUP_ID_LEN);
    let organizer = ParticipantRecord {
        id: organizer_id.clone(),
        meetup_id: meetup_id.clone(),
        name_key: name_key(&organizer_name),
        name: organizer_name.clone(),
        token_hash: organizer_token_hash,
        time_zone: None,
        availability: BTreeMap::new(),
        place_votes: Vec::new(),
        note: None,
        is_organizer: true,
        joined_at: now,
        secret: None,
    };
    let meetup = MeetupRecord {
        id: meetup_id,
        admin_token_hash,
        title,
        description,
        organizer_name,
        organizer_id,
        time_zone: tz.name().to_string(),
        slot_minutes,
        status: Status::Open,
        deadline: input.deadline,
        allow_participant_places: input.allow_participant_places.unwrap_or(true),
        revision: 1,
        doc_version: 0,
        participant_count: 1,
        comment_count: 0,
        created_at: now,
        updated_at: now,
        slots,
        places,
        decision: None,
    };
    Ok(NewMeetup { meetup, organizer })
}

fn build_slots(
    errors: &mut Vec<FieldError>,
    input: &CreateMeetup,
    tz: chrono_tz::Tz,
    slot_minutes: u32,
    now: DateTime<Utc>,
) -> Option<Vec<SlotDef>> {
    if let Some(explicit) = &input.slots {
        if input.days.is_some() || input.window.is_some() {
            errors.push(FieldError::new(
                "slots",
                "give either explicit slots or days and a window, not both",
            ));
            return None;
        }
        return explicit_slots(errors, explicit, now);
    }
    let (days, drop_past) = match &input.days {
        None => (slots::default_days(tz, now), true),
        Some(days) => (parse_days(errors, days, tz, now)?, false),
    };
    let window = match &input.window {
        None => Window::evening(),
        Some(w) => {
            let start = slots::parse_hhmm(&w.start);
            let end = slots::parse_hhmm(&w.end);
            if start.is_none() {
                errors.push(FieldError::new(
                    "window.start",
                    "must be a time as \"HH:MM\"",
                ));
            }
            if end.is_none() {
                errors.push(FieldError::new("window.end", "must be a time as \"HH:MM\""));
            }
            Window {
                start: start?,
                end: end?,
            }
        }
    };
    match slots::window_slots(tz, &days, window, slot_minutes) {
        Ok(slots) if slots.is_empty() => {
            errors.push(FieldError::new(
                "window",
                "is shorter than one slot; no time slots would be offered",
            ));
            None
        }
        // Today's evening that is already over is no candidate.
        Ok(slots) if drop_past => Some(slots.into_iter().filter(|s| s.end > now).collect()),
        Ok(slots) => Some(slots),
        Err(slots::TooManySlots) => {
            errors.push(FieldError::new(
                "days",
                format!("too many time slots: at most {MAX_SLOTS}; pick fewer days, a shorter window or longer slots"),
            ));
            None
        }
    }
}

fn parse_days(
    errors: &mut Vec<FieldError>,
    days: &[String],
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<Vec<NaiveDate>> {
    if days.is_empty() || days.len() > MAX_DAYS {
        errors.push(FieldError::new(
            "days",
            format!("must list 1 to {MAX_DAYS} days"),
        ));
        return None;
    }
    let today = now.with_timezone(&tz).date_naive();
    let yesterday = today.pred_opt()?;
    let last_day = today.checked_add_days(chrono::Days::new(MAX_DAYS_AHEAD as u64))?;
    let mut parsed = Vec::with_capacity(days.len());
    let before = errors.len();
    for (i, day) in days.iter().enumerate() {
        match NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
            Ok(date) if date < yesterday => {
                errors.push(FieldError::new(format!("days[{i}]"), "is in the past"))
            }
            Ok(date) if date > last_day => errors.push(FieldError::new(
                format!("days[{i}]"),
                format!("must be within {MAX_DAYS_AHEAD} days from today"),
            )),
            Ok(date) => parsed.push(date),
            Err(_) => errors.push(FieldError::new(
                format!("days[{i}]"),
                "must be a date as \"YYYY-MM-DD\"",
            )),
        }
    }
    if errors.len() != before {
        return None;
    }
    parsed.sort();
    parsed.dedup();
    Some(parsed)
}

fn explicit_slots(
    errors: &mut Vec<FieldError>,
    input: &[SlotInput],
    now: DateTime<Utc>,
) -> Option<Vec<SlotDef>> {
    if input.is_empty() {
        errors.push(FieldError::new("slots", "must list at least one slot"));
        return None;
    }
    if input.len() > MAX_SLOTS {
        errors.push(FieldError::new(
            "slots",
            format!("too many time slots: at most {MAX_SLOTS}"),
        ));
        return None;
    }
    let before = errors.len();
    let mut out = Vec::with_capacity(input.len());
    let earliest = now - chrono::Duration::days(1);
    let latest = now + horizon();
    for (i, slot) in input.iter().enumerate() {
        if slot.start < earliest || slot.end > latest {
            errors.push(FieldError::new(
                format!("slots[{i}]"),
                format!("must lie between yesterday and {MAX_DAYS_AHEAD} days from now"),
            ));
            continue;
        }
        let length = slot.end - slot.start;
        if length <= chrono::Duration::zero() || length > chrono::Duration::hours(24) {
            errors.push(FieldError::new(
                format!("slots[{i}]"),
                "must end after it starts and last at most 24 hours",
            ));
        } else {
            out.push(SlotDef {
                id: slots::slot_id(slot.start),
                start: slot.start,
                end: slot.end,
            });
        }
    }
    let count = out.len();
    let out = slots::sorted_unique(out);
    if out.len() != count {
        errors.push(FieldError::new("slots", "two slots start at the same time"));
    }
    (errors.len() == before).then_some(out)
}

pub fn patch_meetup(
    meetup: &MeetupRecord,
    principal: &Principal,
    patch: MeetupPatch,
    now: DateTime<Utc>,
) -> Result<MeetupRecord, DomainError> {
    require_admin(principal)?;
    let mut errors = Vec::new();
    let mut next = meetup.clone();
    if let Some(title) = &patch.title
        && let Some(title) = required_text(&mut errors, "title", title, MAX_TITLE_CHARS)
    {
        next.title = title;
    }
    if let Some(description) = &patch.description {
        next.description = optional_text(
            &mut errors,
            "description",
            description.as_deref(),
            MAX_DESCRIPTION_CHARS,
        );
    }
    if let Some(deadline) = patch.deadline {
        if let Some(deadline) = deadline {
            check_deadline(&mut errors, deadline, now);
        }
        next.deadline = deadline;
    }
    if let Some(allow) = patch.allow_participant_places {
        next.allow_participant_places = allow;
    }
    match patch.status {
        None => {}
        Some(Status::Finalized) => errors.push(FieldError::new(
            "status",
            "use POST /finalize to finalize a meetup",
        )),
        Some(status) => {
            if meetup.status == Status::Finalized {
                next.decision = None;
            }
            next.status = status;
            if status == Status::Open && next.deadline.is_some_and(|d| d <= now) {
                errors.push(FieldError::new(
                    "deadline",
                    "has passed; set a new deadline or remove it to reopen",
                ));
            }
        }
    }
    finish(errors, Some(()))?;
    next.updated_at = now;
    Ok(next)
}

fn may_change_places(
    meetup: &MeetupRecord,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    match (principal, meetup.effective_status(now)) {
        (_, Status::Finalized) => Err(DomainError::NotOpen(Status::Finalized)),
        (Principal::Admin, _) => Ok(()),
        (Principal::Participant(_), Status::Open) => Ok(()),
        (Principal::Participant(_), status) => Err(DomainError::NotOpen(status)),
    }
}

pub fn add_place(
    meetup: &MeetupRecord,
    principal: &Principal,
    input: &PlaceInput,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Result<(MeetupRecord, PlaceRecord), DomainError> {
    let (added_by_id, added_by_name) = match principal {
        Principal::Admin => (meetup.organizer_id.clone(), meetup.organizer_name.clone()),
        Principal::Participant(_) if !meetup.allow_participant_places => {
            return Err(DomainError::Forbidden(
                "The organizer has not allowed participants to add places.",
            ));
        }
        Principal::Participant(p) => (p.id.clone(), p.name.clone()),
    };
    may_change_places(meetup, principal, now)?;
    let mut errors = Vec::new();
    let fields = place_fields(&mut errors, "", input);
    let fields = finish(errors, fields)?;
    if meetup.places.len() >= MAX_PLACES {
        return Err(DomainError::Full("places"));
    }
    let place = PlaceRecord {
        id: new_id(rng, CHILD_ID_LEN),
        name: fields.name,
        address: fields.address,
        link: fields.link,
        note: fields.note,
        added_by_id: Some(added_by_id),
        added_by_name,
    };
    let mut next = meetup.clone();
    next.places.push(place.clone());
    next.updated_at = now;
    Ok((next, place))
}

fn place_for_change<'a>(
    meetup: &'a MeetupRecord,
    principal: &Principal,
    place_id: &str,
    now: DateTime<Utc>,
) -> Result<&'a PlaceRecord, DomainError> {
    let place = meetup
        .place(place_id)
        .ok_or_else(|| DomainError::not_found(Resource::Place, place_id))?;
    if let Principal::Participant(p) = principal
        && place.added_by_id.as_deref() != Some(p.id.as_str())
    {
        return Err(DomainError::Forbidden(
            "Only the organizer or whoever added this place may change it.",
        ));
    }
    may_change_places(meetup, principal, now)?;
    Ok(place)
}

pub fn update_place(
    meetup: &MeetupRecord,
    principal: &Principal,
    place_id: &str,
    patch: PlacePatch,
    now: DateTime<Utc>,
) -> Result<(MeetupRecord, PlaceRecord), DomainError> {
    let current = place_for_change(meetup, principal, place_id, now)?;
    let merged = PlaceInput {
        name: patch.name.unwrap_or_else(|| current.name.clone()),
        address: patch.address.unwrap_or_else(|| current.address.clone()),
        link: patch.link.unwrap_or_else(|| current.link.clone()),
        note: patch.note.unwrap_or_else(|| current.note.clone()),
    };
    let mut errors = Vec::new();
    let fields = place_fields(&mut errors, "", &merged);
    let fields = finish(errors, fields)?;
    let place = PlaceRecord {
        name: fields.name,
        address: fields.address,
        link: fields.link,
        note: fields.note,
        ..current.clone()
    };
    let mut next = meetup.clone();
    for slot in next.places.iter_mut().filter(|p| p.id == place_id) {
        *slot = place.clone();
    }
    next.updated_at = now;
    Ok((next, place))
}

pub fn remove_place(
    meetup: &MeetupRecord,
    principal: &Principal,
    place_id: &str,
    now: DateTime<Utc>,
) -> Result<MeetupRecord, DomainError> {
    place_for_change(meetup, principal, place_id, now)?;
    if meetup
        .decision
        .as_ref()
        .is_some_and(|d| d.place_id.as_deref() == Some(place_id))
    {
        return Err(DomainError::PlaceInDecision);
    }
    let mut next = meetup.clone();
    next.places.retain(|p| p.id != place_id);
    next.updated_at = now;
    Ok(next)
}

fn optional_time_zone(errors: &mut Vec<FieldError>, value: Option<&str>) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    validate::time_zone(errors, "timeZone", value).map(|tz| tz.name().to_string())
}

pub fn join_meetup(
    meetup: &MeetupRecord,
    input: &JoinMeetup,
    token_hash: String,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Result<ParticipantRecord, DomainError> {
    require_open(meetup, now)?;
    let mut errors = Vec::new();
    let name = person_name(&mut errors, "name", &input.name);
    let time_zone = optional_time_zone(&mut errors, input.time_zone.as_deref());
    let name = finish(errors, name)?;
    Ok(ParticipantRecord {
        id: new_id(rng, CHILD_ID_LEN),
        meetup_id: meetup.id.clone(),
        name_key: name_key(&name),
        name,
        token_hash,
        time_zone,
        availability: BTreeMap::new(),
        place_votes: Vec::new(),
        note: None,
        is_organizer: false,
        joined_at: now,
        secret: None,
    })
}

fn may_act_for(actor: Actor<'_>, participant_id: &str) -> Result<(), DomainError> {
    match actor {
        Actor::Admin => Ok(()),
        Actor::Participant(id) if id == participant_id => Ok(()),
        Actor::Participant(_) => Err(DomainError::Forbidden(
            "A participant link may only change its own answers.",
        )),
    }
}

/// A participant's new name and its uniqueness key.
#[derive(Debug, Clone, PartialEq)]
pub struct NameChange {
    pub name: String,
    pub name_key: String,
}

/// The fields one participant PATCH changes, validated. Fields left out stay as stored, so two
/// PATCHes of different fields never undo each other (the store applies this to the record it
/// holds at the moment of writing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParticipantChanges {
    pub name: Option<NameChange>,
    pub time_zone: Option<Option<String>>,
    pub availability: Option<BTreeMap<String, Availability>>,
    pub place_votes: Option<Vec<String>>,
    pub note: Option<Option<String>>,
    /// Set (or, with `Some(None)`, remove) the PIN/password; see [`super::secret`].
    pub secret: Option<Option<super::secret::ParticipantSecret>>,
}

impl ParticipantChanges {
    /// Every mutable field set to `participant`'s value (a whole-record replacement).
    pub fn all_of(participant: &ParticipantRecord) -> Self {
        Self {
            name: Some(NameChange {
                name: participant.name.clone(),
                name_key: participant.name_key.clone(),
            }),
            time_zone: Some(participant.time_zone.clone()),
            availability: Some(participant.availability.clone()),
            place_votes: Some(participant.place_votes.clone()),
            note: Some(participant.note.clone()),
            secret: Some(participant.secret.clone()),
        }
    }

    pub fn apply_to(&self, participant: &mut ParticipantRecord) {
        self.clone().apply_into(participant);
    }

    /// [`Self::apply_to`] that moves the new values in instead of copying them.
    pub fn apply_into(self, participant: &mut ParticipantRecord) {
        if let Some(name) = self.name {
            participant.name = name.name;
            participant.name_key = name.name_key;
        }
        if let Some(time_zone) = self.time_zone {
            participant.time_zone = time_zone;
        }
        if let Some(availability) = self.availability {
            participant.availability = availability;
        }
        if let Some(place_votes) = self.place_votes {
            participant.place_votes = place_votes;
        }
        if let Some(note) = self.note {
            participant.note = note;
        }
        if let Some(secret) = &self.secret {
            participant.secret = secret.clone();
        }
    }
}

/// Validates a participant PATCH against the meetup and who is asking.
pub fn participant_changes(
    meetup: &MeetupRecord,
    actor: Actor<'_>,
    participant_id: &str,
    patch: ParticipantPatch,
    now: DateTime<Utc>,
) -> Result<ParticipantChanges, DomainError> {
    may_act_for(actor, participant_id)?;
    if patch.availability.is_some() || patch.place_votes.is_some() {
        require_open(meetup, now)?;
    }
    let mut errors = Vec::new();
    let mut changes = ParticipantChanges::default();
    if let Some(name) = &patch.name
        && let Some(name) = person_name(&mut errors, "name", name)
    {
        changes.name = Some(NameChange {
            name_key: name_key(&name),
            name,
        });
    }
    if let Some(time_zone) = &patch.time_zone {
        changes.time_zone = Some(optional_time_zone(&mut errors, time_zone.as_deref()));
    }
    if let Some(note) = &patch.note {
        changes.note = Some(optional_text(
            &mut errors,
            "note",
            note.as_deref(),
            MAX_NOTE_CHARS,
        ));
    }
    finish(errors, Some(()))?;
    if let Some(availability) = patch.availability {
        if let Some(unknown) = meetup.first_unknown_slot(availability.keys().map(String::as_str)) {
            return Err(DomainError::not_found_in(
                Resource::Slot,
                unknown.to_string(),
                format!("availability.{unknown}"),
            ));
        }
        changes.availability = Some(availability);
    }
    if let Some(mut votes) = patch.place_votes {
        if let Some(unknown) = votes.iter().find(|id| meetup.place(id).is_none()) {
            return Err(DomainError::not_found_in(
                Resource::Place,
                unknown.clone(),
                "placeVotes",
            ));
        }
        // Keep the order the person gave, without repeats.
        let mut seen = std::collections::HashSet::new();
        votes.retain(|id| seen.insert(id.clone()));
        changes.place_votes = Some(votes);
    }
    Ok(changes)
}

/// The participant as a PATCH would leave it (see [`participant_changes`]).
pub fn update_participant(
    meetup: &MeetupRecord,
    principal: &Principal,
    participant: &ParticipantRecord,
    patch: ParticipantPatch,
    now: DateTime<Utc>,
) -> Result<ParticipantRecord, DomainError> {
    let changes = participant_changes(meetup, principal.actor(), &participant.id, patch, now)?;
    let mut next = participant.clone();
    changes.apply_to(&mut next);
    Ok(next)
}

pub fn authorize_leave(
    principal: &Principal,
    participant: &ParticipantRecord,
) -> Result<(), DomainError> {
    may_act_for(principal.actor(), &participant.id)
}

pub fn add_comment(
    meetup: &MeetupRecord,
    principal: &Principal,
    input: &CommentInput,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Result<CommentRecord, DomainError> {
    let mut errors = Vec::new();
    let text = required_text(&mut errors, "text", &input.text, MAX_COMMENT_CHARS);
    let text = finish(errors, text)?;
    let (participant_id, author) = match principal {
        Principal::Admin => (meetup.organizer_id.clone(), meetup.organizer_name.clone()),
        Principal::Participant(p) => (p.id.clone(), p.name.clone()),
    };
    Ok(CommentRecord {
        id: new_id(rng, CHILD_ID_LEN),
        meetup_id: meetup.id.clone(),
        participant_id: Some(participant_id),
        author,
        text,
        created_at: now,
    })
}

pub fn authorize_comment_removal(
    principal: &Principal,
    comment: &CommentRecord,
) -> Result<(), DomainError> {
    match principal {
        Principal::Admin => Ok(()),
        Principal::Participant(p) if comment.participant_id.as_deref() == Some(p.id.as_str()) => {
            Ok(())
        }
        Principal::Participant(_) => Err(DomainError::Forbidden(
            "Only the author or the organizer may delete this comment.",
        )),
    }
}

pub fn authorize_meetup_deletion(principal: &Principal) -> Result<(), DomainError> {
    require_admin(principal)
}

pub fn finalize(
    meetup: &MeetupRecord,
    principal: &Principal,
    input: &FinalizeInput,
    now: DateTime<Utc>,
) -> Result<MeetupRecord, DomainError> {
    require_admin(principal)?;
    let end_slot_id = input.end_slot_id.as_deref().unwrap_or(&input.start_slot_id);
    let (start_index, start_slot) = meetup.slot(&input.start_slot_id).ok_or_else(|| {
        DomainError::not_found_in(Resource::Slot, &input.start_slot_id, "startSlotId")
    })?;
    let (end_index, end_slot) = meetup
        .slot(end_slot_id)
        .ok_or_else(|| DomainError::not_found_in(Resource::Slot, end_slot_id, "endSlotId"))?;
    if end_index < start_index {
        return Err(DomainError::invalid(
            "endSlotId",
            "must not be earlier than the start slot",
        ));
    }
    if let Some(place_id) = &input.place_id
        && meetup.place(place_id).is_none()
    {
        return Err(DomainError::not_found_in(
            Resource::Place,
            place_id,
            "placeId",
        ));
    }
    let mut errors = Vec::new();
    let note = optional_text(&mut errors, "note", input.note.as_deref(), MAX_NOTE_CHARS);
    finish(errors, Some(()))?;
    let mut next = meetup.clone();
    next.status = Status::Finalized;
    next.decision = Some(Decision {
        start_slot_id: start_slot.id.clone(),
        end_slot_id: end_slot.id.clone(),
        start: start_slot.start,
        end: end_slot.end,
        place_id: input.place_id.clone(),
        note,
        decided_at: now,
    });
    next.updated_at = now;
    Ok(next)
}

pub fn require_finalized(meetup: &MeetupRecord) -> Result<&Decision, DomainError> {
    match (&meetup.decision, meetup.status) {
        (Some(decision), Status::Finalized) => Ok(decision),
        _ => Err(DomainError::NotFinalized),
    }
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
