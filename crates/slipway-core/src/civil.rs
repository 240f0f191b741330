//! Calendar arithmetic on [`Millis`] (UTC), done by hand so the rules need no date crate:
//! weekday and minute of day for deployment windows, and the text forms used in reasons.
//!
//! The date conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`
//! (proleptic Gregorian calendar, valid far beyond any timestamp slipway will meet).

use std::time::Duration;

use crate::model::Millis;

pub const MS_PER_MINUTE: i64 = 60_000;
pub const MS_PER_DAY: i64 = 86_400_000;
pub const MINUTES_PER_DAY: u32 = 1_440;

/// Days since 1970-01-01 of the civil date `year-month-day` (month 1..=12, day 1..=31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both casts are of values bounded above by the arithmetic (≤ 31 and ≤ 12).
    (year, month as u32, day as u32)
}

/// Milliseconds at `hour:minute` UTC on a civil date; handy for building times in tests
/// and for callers that parse dates.
pub fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> Millis {
    days_from_civil(year, month, day) * MS_PER_DAY
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * MS_PER_MINUTE
}

/// Days since the epoch of the day `now` falls on (floor, also before 1970).
pub fn day_index(now: Millis) -> i64 {
    now.div_euclid(MS_PER_DAY)
}

/// Day of the week of a day index, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
pub fn weekday_of_day(day: i64) -> usize {
    // rem_euclid(7) is in 0..7, so the cast is lossless.
    (day + 3).rem_euclid(7) as usize
}

/// Day of the week `now` falls on, Monday = 0 … Sunday = 6.
pub fn weekday(now: Millis) -> usize {
    weekday_of_day(day_index(now))
}

/// Whole minutes since midnight UTC, `0..1440`.
pub fn minute_of_day(now: Millis) -> u32 {
    // rem_euclid(MS_PER_DAY) / MS_PER_MINUTE is in 0..1440.
    (now.rem_euclid(MS_PER_DAY) / MS_PER_MINUTE) as u32
}

/// `2026-11-26T09:00Z`: the minute precision deployment windows have.
pub fn format_minute(now: Millis) -> String {
    let (y, mo, d) = civil_from_days(day_index(now));
    let m = minute_of_day(now);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}Z", m / 60, m % 60)
}

/// `2026-11-24T10:00:00.123Z`: RFC 3339 in UTC with milliseconds, as the API writes times.
pub fn format_rfc3339(now: Millis) -> String {
    let (y, mo, d) = civil_from_days(day_index(now));
    let ms = now.rem_euclid(MS_PER_DAY);
    let (h, min, s, milli) = (
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// A duration in milliseconds, saturating at `i64::MAX` (about 292 million years).
pub fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration as people read it in a reason: `250ms`, `30s`, `4m 30s`, `1h 5m`.
/// Below a second it shows milliseconds; above, whole seconds (the rest is dropped).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_a_thursday() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(weekday(0), 3);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn known_dates_round_trip() {
        // 2026-11-26 is a Thursday; 2000-02-29 a Tuesday (leap day of a 400-year);
        // 1969-12-31 a Wednesday (before the epoch).
        for (y, m, d, wd) in [
            (2026, 11, 26, 3),
            (2000, 2, 29, 1),
            (1969, 12, 31, 2),
            (2024, 12, 31, 1),
            (2100, 3, 1, 0),
        ] {
            let days = days_from_civil(y, m, d);
            assert_eq!(civil_from_days(days), (y, m, d));
            assert_eq!(weekday_of_day(days), wd, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn every_day_round_trips_over_four_centuries() {
        let start = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        let mut prev = civil_from_days(start - 1);
        for day in start..end {
            let date = civil_from_days(day);
            assert_eq!(days_from_civil(date.0, date.1, date.2), day);
            assert!(date > prev, "dates must increase: {prev:?} then {date:?}");
            prev = date;
        }
    }

    #[test]
    fn before_the_epoch_floors_to_the_previous_day() {
        let t = at(1970, 1, 1, 0, 0) - 1;
        assert_eq!(weekday(t), 2);
        assert_eq!(minute_of_day(t), 1_439);
        assert_eq!(format_rfc3339(t), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn formats() {
        let t = at(2026, 11, 24, 10, 0) + 123;
        assert_eq!(format_rfc3339(t), "2026-11-24T10:00:00.123Z");
        assert_eq!(format_minute(at(2026, 11, 26, 9, 0)), "2026-11-26T09:00Z");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(270)), "4m 30s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(3_900)), "1h 5m");
        assert_eq!(format_duration(Duration::from_millis(1_999)), "1s");
    }
}
