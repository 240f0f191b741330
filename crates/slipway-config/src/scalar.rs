//! Parsers for the scalar forms of the config file: durations, percentages, windows.

use std::time::Duration;

use crate::model::Window;
use crate::tree::quote;

/// A scalar that did not parse: the message, and a concrete suggestion when we have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalarError {
    pub message: String,
    pub hint: Option<String>,
}

impl ScalarError {
    fn new(message: impl Into<String>) -> Self {
        ScalarError {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// One line for the public `parse_*` functions, which return a plain string.
    fn into_line(self) -> String {
        match self.hint {
            Some(hint) => format!("{} ({hint})", self.message),
            None => self.message,
        }
    }
}

pub(crate) const DURATION_EXPECTED: &str =
    "a whole number with a unit ms, s, m or h, such as 250ms, 30s, 5m, 2h or 1m30s";

/// Parses `250ms`, `30s`, `5m`, `2h` and combinations in decreasing units like `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    duration(s).map_err(ScalarError::into_line)
}

pub(crate) fn duration(s: &str) -> Result<Duration, ScalarError> {
    let text = s.trim();
    let fail = || ScalarError::new(format!("expected a duration like 30s, got {}", quote(s)));
    if text.is_empty() {
        return Err(fail());
    }
    // Units from largest to smallest; each part must use a smaller unit than the last.
    const UNITS: [(&str, u128); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut total_ms: u128 = 0;
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(fail());
        }
        let (number, after) = rest.split_at(digits);
        if after.starts_with('.') {
            return Err(fail()
                .hint("durations take whole numbers: use a smaller unit, like `1500ms` for 1.5s"));
        }
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(if after.is_empty() && rest.len() == text.len() {
                fail().hint(format!("add a unit, like `{number}s`"))
            } else {
                fail()
            });
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            let hint = match unit.to_ascii_lowercase().as_str() {
                "sec" | "secs" | "second" | "seconds" => Some(format!("write `{number}s`")),
                "min" | "mins" | "minute" | "minutes" => Some(format!("write `{number}m`")),
                "hr" | "hrs" | "hour" | "hours" => Some(format!("write `{number}h`")),
                "d" | "day" | "days" => {
                    Some("days are not a unit here; write hours, like `24h`".to_owned())
                }
                "msec" | "millis" | "milliseconds" => Some(format!("write `{number}ms`")),
                _ => None,
            };
            return Err(match hint {
                Some(hint) => fail().hint(hint),
                None => fail(),
            });
        };
        if index < next_unit {
            return Err(fail().hint("write the larger unit first, like `1m30s`"));
        }
        next_unit = index + 1;
        let value: u128 = number.parse().map_err(|_| fail())?;
        total_ms = value
            .checked_mul(UNITS[index].1)
            .and_then(|ms| ms.checked_add(total_ms))
            .ok_or_else(fail)?;
        rest = after;
    }
    let ms = u64::try_from(total_ms).map_err(|_| fail())?;
    Ok(Duration::from_millis(ms))
}

pub(crate) const PERCENT_EXPECTED: &str =
    "a percentage from 0% to 100% like 1%, or a fraction from 0 to 1 like 0.01";

/// Parses `1%` or `0.01` into the fraction `0.01`; the result is within `0.0..=1.0`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    percent(s).map_err(ScalarError::into_line)
}

pub(crate) fn percent(s: &str) -> Result<f64, ScalarError> {
    let text = s.trim();
    let fail = || {
        ScalarError::new(format!(
            "expected a percentage like 1% or a fraction like 0.01, got {}",
            quote(s)
        ))
    };
    let (number, is_percent) = match text.strip_suffix('%') {
        Some(number) => (number.trim_end(), true),
        None => (text, false),
    };
    let value = plain_number(number).ok_or_else(fail)?;
    if is_percent {
        if value > 100.0 {
            return Err(ScalarError::new(format!("{} is more than 100%", quote(s))));
        }
        Ok(value / 100.0)
    } else if value > 1.0 {
        let mut error = ScalarError::new(format!("{} is more than 1 (a fraction)", quote(s)));
        if value <= 100.0 {
            error = error.hint(format!("did you mean `{number}%`?"));
        }
        Err(error)
    } else {
        Ok(value)
    }
}

/// A non-negative decimal written with digits and at most one dot (no `inf`, `NaN`, `1e3`).
fn plain_number(text: &str) -> Option<f64> {
    let ok = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|&c| c == '.').count() <= 1
        && text.chars().any(|c| c.is_ascii_digit());
    ok.then(|| text.parse::<f64>().ok()).flatten()
}

pub(crate) const WINDOW_EXPECTED: &str = "days and a UTC time range, like `Mon-Thu 09:00-16:00 UTC`, `Mon,Wed 22:00-02:00` or `Sat-Sun 00:00-24:00`";

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Parses a weekly window: days (`Mon`, `Mon-Thu`, `Mon,Wed`, `Fri-Mon`), a time range
/// `HH:MM-HH:MM` (an end before the start wraps past midnight, `24:00` is the end of the
/// day) and an optional `UTC`.
pub fn parse_window(s: &str) -> Result<Window, String> {
    window(s).map_err(ScalarError::into_line)
}

pub(crate) fn window(s: &str) -> Result<Window, ScalarError> {
    let invalid = |why: String| ScalarError::new(format!("invalid window {}: {why}", quote(s)));
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (days_text, times_text) = match parts.as_slice() {
        [days, times] => (*days, *times),
        [days, times, zone] => {
            if !zone.eq_ignore_ascii_case("UTC") {
                return Err(
                    invalid(format!("time zone {} is not supported", quote(zone)))
                        .hint("write the times in UTC and end with `UTC` (or nothing)"),
                );
            }
            (*days, *times)
        }
        _ => {
            return Err(invalid(
                "expected days, a time range and optionally `UTC`".to_owned(),
            ));
        }
    };

    let mut days = [false; 7];
    for part in days_text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (day(first, s)?, day(last, s)?),
            None => {
                let only = day(part, s)?;
                (only, only)
            }
        };
        // A range may wrap past Sunday, like `Fri-Mon`.
        let mut d = first;
        loop {
            days[d] = true;
            if d == last {
                break;
            }
            d = (d + 1) % 7;
        }
    }

    let Some((start_text, end_text)) = times_text.split_once('-') else {
        return Err(invalid(format!(
            "expected a time range like `09:00-16:00`, got {}",
            quote(times_text)
        )));
    };
    let start_minute = time(start_text, s)?;
    let end_minute = time(end_text, s)?;
    if start_minute == 24 * 60 {
        return Err(invalid("a window cannot start at 24:00".to_owned()).hint("start at `00:00`"));
    }
    if start_minute == end_minute {
        return Err(invalid("it starts and ends at the same time".to_owned())
            .hint("for a whole day write `00:00-24:00`"));
    }
    Ok(Window {
        text: s.trim().to_owned(),
        days,
        start_minute,
        end_minute,
    })
}

fn day(text: &str, window: &str) -> Result<usize, ScalarError> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = DAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(text))
        .or_else(|| FULL_DAYS.iter().position(|d| *d == lower))
    {
        return Ok(index);
    }
    let error = ScalarError::new(format!(
        "invalid window {}: unknown day {}",
        quote(window),
        quote(text)
    ));
    // Compare with the full names too, so `Thurs` or `Wednes` find their day.
    let suggestion = closest(text, DAYS).or_else(|| {
        let full = closest(text, FULL_DAYS)?;
        FULL_DAYS.iter().position(|d| *d == full).map(|i| DAYS[i])
    });
    Err(match suggestion {
        Some(day) => error.hint(format!("did you mean `{day}`?")),
        None => error.hint("days are Mon, Tue, Wed, Thu, Fri, Sat, Sun"),
    })
}

fn time(text: &str, window: &str) -> Result<u32, ScalarError> {
    let fail = || {
        ScalarError::new(format!(
            "invalid window {}: invalid time {}",
            quote(window),
            quote(text)
        ))
        .hint("times are HH:MM from 00:00 to 24:00")
    };
    let (hours, minutes) = text.split_once(':').ok_or_else(fail)?;
    let digits = |t: &str, max_len: usize| {
        (!t.is_empty() && t.len() <= max_len && t.chars().all(|c| c.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    let hours = digits(hours, 2).ok_or_else(fail)?;
    let minutes = digits(minutes, 2)
        .filter(|_| minutes.len() == 2)
        .ok_or_else(fail)?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(fail());
    }
    Ok(hours * 60 + minutes)
}

/// `did you mean `x`?` for the closest candidate, when one is close enough. Shared with
/// the API, which names apps and environments the same way.
pub fn did_you_mean<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(input, candidates).map(|c| format!("did you mean `{c}`?"))
}

pub(crate) fn closest<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let input = input.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let distance = strsim::osa_distance(&input, &lower);
        // Short words are all within 2 edits of each other; demand more of them. A swap of
        // two neighbours counts as one edit (`bbo` → `bob`).
        let limit = if lower.chars().count() <= 3 { 1 } else { 2 };
        let similarity = strsim::jaro_winkler(&input, &lower);
        if distance <= limit || similarity >= 0.9 {
            let score = similarity - distance as f64;
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, candidate));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// App, environment and user names: `[a-z0-9][a-z0-9_-]*`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |n| Ok(Duration::from_millis(n));
        assert_eq!(parse_duration("250ms"), ms(250));
        assert_eq!(parse_duration("30s"), ms(30_000));
        assert_eq!(parse_duration("5m"), ms(300_000));
        assert_eq!(parse_duration("2h"), ms(7_200_000));
        assert_eq!(parse_duration("1m30s"), ms(90_000));
        assert_eq!(parse_duration("1h2m3s4ms"), ms(3_723_004));
        assert_eq!(parse_duration("0s"), ms(0));
        for bad in [
            "",
            "abc",
            "30",
            "1.5s",
            "30s1m",
            "5x",
            "s",
            "1m1m",
            "-1s",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            parse_duration("30").unwrap_err(),
            "expected a duration like 30s, got `30` (add a unit, like `30s`)"
        );
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.01"), Ok(0.01));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert_eq!(
            parse_percent("5").unwrap_err(),
            "`5` is more than 1 (a fraction) (did you mean `5%`?)"
        );
        for bad in ["", "%", "abc", "101%", "-1%", "inf", "NaN", "1e-2", "1..2"] {
            assert!(parse_percent(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn windows() {
        let w = parse_window("Mon-Thu 09:00-16:00 UTC").unwrap();
        assert_eq!(w.days, [true, true, true, true, false, false, false]);
        assert_eq!((w.start_minute, w.end_minute), (540, 960));
        assert_eq!(w.text, "Mon-Thu 09:00-16:00 UTC");
        let w = parse_window("Mon,Wed 22:00-02:00").unwrap();
        assert_eq!(w.days, [true, false, true, false, false, false, false]);
        assert_eq!((w.start_minute, w.end_minute), (1320, 120));
        let w = parse_window("Sat-Sun 00:00-24:00").unwrap();
        assert_eq!(w.days, [false, false, false, false, false, true, true]);
        assert_eq!((w.start_minute, w.end_minute), (0, 1440));
        let w = parse_window("Fri-Mon 9:30-10:00").unwrap();
        assert_eq!(w.days, [true, false, false, false, true, true, true]);
        assert_eq!(w.start_minute, 570);
        assert_eq!(
            parse_window("Tus 09:00-10:00").unwrap_err(),
            "invalid window `Tus 09:00-10:00`: unknown day `Tus` (did you mean `Tue`?)"
        );
        assert_eq!(
            parse_window("Mon-Thurs 09:00-10:00").unwrap_err(),
            "invalid window `Mon-Thurs 09:00-10:00`: unknown day `Thurs` (did you mean `Thu`?)"
        );
        for bad in [
            "",
            "Mon",
            "Mon 09:00",
            "Mon 09:00-25:00",
            "Mon 09:60-10:00",
            "Mon 24:00-01:00",
            "Mon 09:00-09:00",
            "Mon 09:00-10:00 CET",
            "Mon-Xyz 09:00-10:00",
            "Mon 9-10",
            "Mon 09:00-10:00 UTC extra",
        ] {
            assert!(parse_window(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest(
                "blue-grene",
                ["recreate", "rolling", "blue-green", "canary"]
            ),
            Some("blue-green")
        );
        assert_eq!(closest("lisen", ["listen", "data_dir"]), Some("listen"));
        assert_eq!(closest("xyz", ["listen", "run"]), None);
        assert!(is_valid_name("web-2_a"));
        assert!(!is_valid_name("Web"));
        assert!(!is_valid_name("-web"));
        assert!(!is_valid_name(""));
    }
}
