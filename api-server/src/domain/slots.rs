//! Candidate time slots. Local days and daily windows are turned into UTC instants through the
//! meetup's time zone, and slots are stepped in real (UTC) time, so a window that spans a
//! daylight-saving change gets the slots it actually lasts — no doubled or missing hour.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;

use super::SlotDef;
use super::limits::MAX_SLOTS;

pub const DEFAULT_DAYS: u32 = 7;

/// A daily window in local time; `end <= start` means it runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn evening() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(23, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

/// Parses "HH:MM" (24-hour clock).
pub fn parse_hhmm(value: &str) -> Option<NaiveTime> {
    let (h, m) = value.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// Today and the following days in the meetup's zone.
pub fn default_days(tz: Tz, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let today = now.with_timezone(&tz).date_naive();
    today.iter_days().take(DEFAULT_DAYS as usize).collect()
}

/// A local wall-clock time as a UTC instant: the earlier reading when the clock repeats
/// (autumn), and the first existing minute after a spring-forward gap.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut candidate = local;
    // Gaps are at most a few hours long; step forward until the clock exists again.
    for _ in 0..(24 * 4) {
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earliest, _) => return earliest.with_timezone(&Utc),
            LocalResult::None => candidate += Duration::minutes(15),
        }
    }
    local.and_utc()
}

/// Stable, readable, URL-safe slot id derived from the start instant.
pub fn slot_id(start: DateTime<Utc>) -> String {
    // The same text as `start.format("%Y%m%dT%H%MZ")`, without parsing that pattern (or going
    // through `fmt`) for each of a new meetup's slots; years beyond four digits take chrono's
    // path (a sign is added).
    let utc = start.naive_utc();
    let year = utc.year();
    if !(0..=9999).contains(&year) {
        return start.format("%Y%m%dT%H%MZ").to_string();
    }
    let mut text = *b"00000000T0000Z";
    let year = year.unsigned_abs();
    super::rfc3339::put_two(&mut text[0..2], year / 100);
    super::rfc3339::put_two(&mut text[2..4], year % 100);
    super::rfc3339::put_two(&mut text[4..6], utc.month());
    super::rfc3339::put_two(&mut text[6..8], utc.day());
    super::rfc3339::put_two(&mut text[9..11], utc.hour());
    super::rfc3339::put_two(&mut text[11..13], utc.minute());
    text.iter().map(|&b| char::from(b)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManySlots;

/// Slots of `slot_minutes` filling `window` on each of `days`, chronological and de-duplicated.
pub fn window_slots(
    tz: Tz,
    days: &[NaiveDate],
    window: Window,
    slot_minutes: u32,
) -> Result<Vec<SlotDef>, TooManySlots> {
    let step = Duration::minutes(i64::from(slot_minutes.max(1)));
    let mut slots = Vec::new();
    for day in days {
        let start = resolve_local(tz, day.and_time(window.start));
        let end_day = if window.end <= window.start {
            day.succ_opt().unwrap_or(*day)
        } else {
            *day
        };
        let end = resolve_local(tz, end_day.and_time(window.end));
        let mut t = start;
        while t + step <= end {
            if slots.len() >= MAX_SLOTS {
                return Err(TooManySlots);
            }
            slots.push(SlotDef {
                id: slot_id(t),
                start: t,
                end: t + step,
            });
            t += step;
        }
    }
    Ok(sorted_unique(slots))
}

pub fn sorted_unique(mut slots: Vec<SlotDef>) -> Vec<SlotDef> {
    slots.sort_by_key(|s| (s.start, s.end));
    slots.dedup_by(|a, b| a.id == b.id);
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    #[test]
    fn slot_ids_are_the_start_in_compact_utc() {
        for (y, mo, d, h, mi) in [
            (2026, 3, 29, 1, 45),
            (1, 1, 1, 0, 0),
            (9999, 12, 31, 23, 59),
        ] {
            let at = Utc
                .with_ymd_and_hms(y, mo, d, h, mi, 0)
                .single()
                .expect("valid");
            assert_eq!(slot_id(at), at.format("%Y%m%dT%H%MZ").to_string());
        }
        let far = Utc
            .with_ymd_and_hms(12026, 1, 2, 3, 4, 0)
            .single()
            .expect("valid");
        assert_eq!(slot_id(far), "+120260102T0304Z");
        assert_eq!(
            slot_id(
                Utc.with_ymd_and_hms(2026, 3, 29, 1, 45, 0)
                    .single()
                    .expect("valid")
            ),
            "20260329T0145Z"
        );
    }

    #[test]
    fn default_evenings_are_five_hourly_slots_a_day_for_seven_days() {
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let now = Utc.with_ymd_and_hms(2025, 6, 2, 10, 0, 0).unwrap();
        let days = default_days(tz, now);
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], date(2025, 6, 2));
        let slots = window_slots(tz, &days, Window::evening(), 60).expect("fits");
        assert_eq!(slots.len(), 35);
        // 18:00 CEST is 16:00 UTC.
        assert_eq!(
            slots[0].start,
            Utc.with_ymd_and_hms(2025, 6, 2, 16, 0, 0).unwrap()
        );
        assert_eq!(slots[0].id, "20250602T1600Z");
        assert_eq!(
            slots[4].end,
            Utc.with_ymd_and_hms(2025, 6, 2, 21, 0, 0).unwrap()
        );
    }

    #[test]
    fn today_is_taken_in_the_meetup_zone() {
        // 23:30 UTC on 1 June is already 2 June in Tokyo.
        let tz: Tz = "Asia/Tokyo".parse().expect("zone");
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 23, 30, 0).unwrap();
        assert_eq!(default_days(tz, now)[0], date(2025, 6, 2));
    }

    #[test]
    fn evening_slots_follow_the_clock_across_spring_forward() {
        // Berlin moves from CET (+1) to CEST (+2) on 2025-03-30.
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let days = [date(2025, 3, 29), date(2025, 3, 30)];
        let slots = window_slots(tz, &days, Window::evening(), 60).expect("fits");
        assert_eq!(slots.len(), 10);
        assert_eq!(
            slots[0].start,
            Utc.with_ymd_and_hms(2025, 3, 29, 17, 0, 0).unwrap()
        );
        assert_eq!(
            slots[5].start,
            Utc.with_ymd_and_hms(2025, 3, 30, 16, 0, 0).unwrap()
        );
    }

    #[test]
    fn window_across_midnight_and_spring_forward_loses_the_skipped_hour() {
        // 22:00 CET (21:00Z) to 04:00 CEST (02:00Z) is five real hours, not six.
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let window = Window {
            start: hm(22, 0),
            end: hm(4, 0),
        };
        let slots = window_slots(tz, &[date(2025, 3, 29)], window, 60).expect("fits");
        assert_eq!(slots.len(), 5);
        assert_eq!(
            slots[0].start,
            Utc.with_ymd_and_hms(2025, 3, 29, 21, 0, 0).unwrap()
        );
        assert_eq!(
            slots[4].end,
            Utc.with_ymd_and_hms(2025, 3, 30, 2, 0, 0).unwrap()
        );
    }

    #[test]
    fn window_across_midnight_and_fall_back_gains_the_repeated_hour() {
        // 22:00 CEST (20:00Z) to 04:00 CET (03:00Z) on 2025-10-25/26 is seven real hours.
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let window = Window {
            start: hm(22, 0),
            end: hm(4, 0),
        };
        let slots = window_slots(tz, &[date(2025, 10, 25)], window, 60).expect("fits");
        assert_eq!(slots.len(), 7);
        let ids: std::collections::HashSet<_> = slots.iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), 7, "no duplicate slot across the repeated hour");
    }

    #[test]
    fn a_start_inside_the_spring_gap_moves_to_the_first_real_minute() {
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let t = resolve_local(tz, date(2025, 3, 30).and_time(hm(2, 30)));
        // 03:00 CEST == 01:00Z.
        assert_eq!(t, Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap());
    }

    #[test]
    fn ambiguous_local_time_takes_the_earlier_instant() {
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let t = resolve_local(tz, date(2025, 10, 26).and_time(hm(2, 30)));
        assert_eq!(t, Utc.with_ymd_and_hms(2025, 10, 26, 0, 30, 0).unwrap());
    }

    #[test]
    fn equal_start_and_end_is_a_full_day() {
        let tz: Tz = "UTC".parse().expect("zone");
        let window = Window {
            start: hm(9, 0),
            end: hm(9, 0),
        };
        let slots = window_slots(tz, &[date(2025, 1, 1)], window, 60).expect("fits");
        assert_eq!(slots.len(), 24);
    }

    #[test]
    fn slot_cap_is_enforced() {
        let tz: Tz = "UTC".parse().expect("zone");
        let days: Vec<_> = date(2025, 1, 1).iter_days().take(8).collect();
        let window = Window {
            start: hm(0, 0),
            end: hm(0, 0),
        };
        assert_eq!(window_slots(tz, &days, window, 30), Err(TooManySlots));
        assert!(window_slots(tz, &days[..7], window, 30).is_ok());
    }

    #[test]
    fn hhmm_parsing_is_strict() {
        assert_eq!(parse_hhmm("18:30"), Some(hm(18, 30)));
        assert_eq!(parse_hhmm("8:30"), None);
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("18-30"), None);
    }
}
