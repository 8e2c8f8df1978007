//! CronFederatedHPA schedules in Kubernetes CronJob syntax, and when they run.
//!
//! A schedule is five fields, `minute hour day-of-month month day-of-week`, each a `,` list of
//! `*` (or `?`), a value, or a `a-b` range, any of them with a `/step`; a value with a step
//! (`5/15`) runs to the field's maximum. Months and weekdays may be named (`JAN`, `mon`);
//! weekdays run 0 (Sunday) to 6. When both day fields are restricted a day matching either
//! runs, otherwise both must match. `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//! (`@midnight`) and `@hourly` stand for their usual schedules. `TZ=`/`CRON_TZ=` prefixes are
//! refused (the rule's `timeZone` says the zone), and so is `@every`.
//!
//! Times are wall-clock times in the rule's zone: one that does not exist (skipped by a
//! daylight saving change) does not run, one that happens twice runs the first time only.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// How far [`Schedule::next_after`] and [`Schedule::latest_at_or_before`] look: every
/// satisfiable schedule runs within eight years (February 29 skips 2100).
const SEARCH_YEARS: i16 = 9;

/// Why a schedule or a time zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Nothing but whitespace.
    #[error("empty schedule")]
    Empty,
    /// A `TZ=` or `CRON_TZ=` prefix.
    #[error("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    TimeZoneInSchedule,
    /// Not five fields.
    #[error("expected exactly 5 fields, found {0}")]
    FieldCount(usize),
    /// `@every <duration>`.
    #[error("@every is not supported, use a 5-field schedule")]
    Every,
    /// An `@` word that names no schedule.
    #[error(
        "unrecognized descriptor {0:?}: supported are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly"
    )]
    Descriptor(String),
    /// One field is malformed or out of range.
    #[error("{field} field {text:?}: {reason}")]
    Field {
        /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// An empty time zone name.
    #[error("timeZone must be nil or non-empty string")]
    EmptyTimeZone,
    /// `Local`, which means whatever zone the hub runs in.
    #[error("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    LocalTimeZone,
    /// A name the time zone database does not have.
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
}

/// The fields of a schedule as bit sets (bit `n` set: value `n` runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// The day-of-month field starts with `*` or `?` (unstepped): the day fields AND.
    dom_star: bool,
    /// The same for day-of-week.
    dow_star: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names of the values from `min` on, matched case-insensitively.
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed field: its values and whether it counts as unrestricted for the day rule.
struct Field {
    bits: u64,
    star: bool,
}

impl FieldSpec {
    fn error(&self, text: &str, reason: impl Into<String>) -> CronError {
        CronError::Field {
            field: self.name,
            text: text.to_string(),
            reason: reason.into(),
        }
    }

    fn value(&self, field: &str, s: &str) -> Result<u32, CronError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u32>()
                .map_err(|_| self.error(field, format!("{s} is too large")));
        }
        let lower = s.to_ascii_lowercase();
        match self.names.iter().position(|n| *n == lower) {
            // Names are at most twelve, so the index fits.
            Some(i) => Ok(self.min + i as u32),
            None if s.is_empty() => Err(self.error(field, "a value is missing")),
            None => Err(self.error(field, format!("{s:?} is not a number or a name"))),
        }
    }

    fn parse(&self, text: &str) -> Result<Field, CronError> {
        let mut out = Field {
            bits: 0,
            star: false,
        };
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let step = match step {
                None => 1,
                Some(s) if s.contains('/') => return Err(self.error(text, "too many slashes")),
                Some(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) => {
                    return Err(self.error(text, format!("the step {s:?} is not a number")));
                }
                Some(s) => match s.parse::<u32>() {
                    Ok(0) => return Err(self.error(text, "a step must be at least 1")),
                    Ok(n) => n,
                    Err(_) => return Err(self.error(text, format!("the step {s} is too large"))),
                },
            };
            let (lo, hi, star) = if range == "*" || range == "?" {
                (self.min, self.max, step == 1)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(text, a)?, self.value(text, b)?, false)
            } else {
                let v = self.value(text, range)?;
                // `5/15` runs from 5 to the maximum.
                (v, if part.contains('/') { self.max } else { v }, false)
            };
            if lo < self.min {
                return Err(self.error(text, format!("{lo} is below the minimum {}", self.min)));
            }
            if hi > self.max {
                return Err(self.error(text, format!("{hi} is above the maximum {}", self.max)));
            }
            if lo > hi {
                return Err(self.error(text, format!("the range {lo}-{hi} runs backwards")));
            }
            // Every value is at most 59 and every step at least 1.
            for v in (lo..=hi).step_by(step as usize) {
                out.bits |= 1 << v;
            }
            out.star |= star;
        }
        Ok(out)
    }
}

impl Schedule {
    /// Parses a schedule in Kubernetes CronJob syntax (see the module documentation).
    pub fn parse(s: &str) -> Result<Schedule, CronError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CronError::Empty);
        }
        if s.contains("TZ") {
            return Err(CronError::TimeZoneInSchedule);
        }
        let expanded = match s {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ if s.starts_with("@every") => return Err(CronError::Every),
            _ if s.starts_with('@') => return Err(CronError::Descriptor(s.to_string())),
            _ => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        let dom = DAY_OF_MONTH.parse(dom)?;
        let dow = DAY_OF_WEEK.parse(dow)?;
        // The specs bound each field below its type's width.
        Ok(Schedule {
            minutes: MINUTE.parse(minute)?.bits,
            hours: HOUR.parse(hour)?.bits as u32,
            days_of_month: dom.bits as u32,
            months: MONTH.parse(month)?.bits as u16,
            days_of_week: dow.bits as u8,
            dom_star: dom.star,
            dow_star: dow.star,
        })
    }

    fn month_matches(&self, d: Date) -> bool {
        self.months & (1 << d.month()) != 0
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn hour_matches(&self, h: i8) -> bool {
        self.hours & (1 << h) != 0
    }

    fn minute_matches(&self, m: i8) -> bool {
        self.minutes & (1 << m) != 0
    }

    /// The first time the schedule runs strictly after `after`, in the zone `tz`; `None`
    /// when it never runs within nine years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        let local = tz.to_datetime(after);
        let start = minute_floor(local)
            .checked_add(SignedDuration::from_mins(1))
            .ok()?;
        let limit = start
            .date()
            .checked_add(jiff::Span::new().years(SEARCH_YEARS))
            .ok()?;
        let mut date = start.date();
        let mut from = Some((start.hour(), start.minute()));
        while date <= limit {
            if !self.month_matches(date) {
                date = date.last_of_month().tomorrow().ok()?;
                from = None;
                continue;
            }
            if self.day_matches(date) {
                let (h0, m0) = from.unwrap_or((0, 0));
                for h in (h0..24).filter(|h| self.hour_matches(*h)) {
                    let m_start = if h == h0 { m0 } else { 0 };
                    for m in (m_start..60).filter(|m| self.minute_matches(*m)) {
                        if let Some(ts) = resolve(tz, date.at(h, m, 0, 0))
                            && ts > after
                        {
                            return Some(ts);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
            from = None;
        }
        None
    }

    /// The last time the schedule ran at or before `at`, in the zone `tz`; `None` when it did
    /// not within nine years.
    pub fn latest_at_or_before(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        let local = tz.to_datetime(at);
        // In the second pass of a repeated hour, later wall times of that hour already ran.
        let fold = match tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Fold { before, after } => {
                i64::from(before.seconds()) - i64::from(after.seconds())
            }
            _ => 0,
        };
        let start = minute_floor(local.checked_add(SignedDuration::from_secs(fold)).ok()?);
        let limit = start
            .date()
            .checked_sub(jiff::Span::new().years(SEARCH_YEARS))
            .ok()?;
        let mut date = start.date();
        let mut from = Some((start.hour(), start.minute()));
        while date >= limit {
            if !self.month_matches(date) {
                date = date.first_of_month().yesterday().ok()?;
                from = None;
                continue;
            }
            if self.day_matches(date) {
                let (h0, m0) = from.unwrap_or((23, 59));
                for h in (0..=h0).rev().filter(|h| self.hour_matches(*h)) {
                    let m_end = if h == h0 { m0 } else { 59 };
                    for m in (0..=m_end).rev().filter(|m| self.minute_matches(*m)) {
                        if let Some(ts) = resolve(tz, date.at(h, m, 0, 0))
                            && ts <= at
                        {
                            return Some(ts);
                        }
                    }
                }
            }
            date = date.yesterday().ok()?;
            from = None;
        }
        None
    }
}

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    /// The expanded five fields as lists of values (`0,30 9 * * 1,2,3,4,5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(bits: u64, min: u32, max: u32) -> String {
            if (min..=max).all(|v| bits & (1 << v) != 0) {
                return "*".into();
            }
            let vals: Vec<String> = (min..=max)
                .filter(|v| bits & (1 << v) != 0)
                .map(|v| v.to_string())
                .collect();
            vals.join(",")
        }
        write!(
            f,
            "{} {} {} {} {}",
            list(self.minutes, 0, 59),
            list(u64::from(self.hours), 0, 23),
            list(u64::from(self.days_of_month), 1, 31),
            list(u64::from(self.months), 1, 12),
            list(u64::from(self.days_of_week), 0, 6),
        )
    }
}

fn minute_floor(dt: DateTime) -> DateTime {
    dt.date().at(dt.hour(), dt.minute(), 0, 0)
}

/// The instant a wall time means in `tz`: none in a gap, the first of two in a fold.
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(dt).ok()
        }
        AmbiguousOffset::Gap { .. } => None,
    }
}

/// The first time `schedule` runs strictly after `after` in `tz`.
pub fn next(schedule: &Schedule, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    schedule.next_after(tz, after)
}

/// The latest time `schedule` ran in `(last, now]`: what a controller waking up late still
/// owes (older missed times are superseded by it).
pub fn missed(
    schedule: &Schedule,
    tz: &TimeZone,
    last: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    schedule.latest_at_or_before(tz, now).filter(|t| *t > last)
}

/// Looks up an IANA time zone as Kubernetes validates a CronJob's `timeZone`: a non-empty,
/// exactly spelled name of the time zone database other than `Local`. The system's database
/// is used, or the copy built in when the system has none.
pub fn time_zone(name: &str) -> Result<TimeZone, CronError> {
    if name.is_empty() {
        return Err(CronError::EmptyTimeZone);
    }
    let unknown = || CronError::UnknownTimeZone(name.to_string());
    if name.eq_ignore_ascii_case("Local") {
        return Err(CronError::LocalTimeZone);
    }
    let tz = TimeZone::get(name).map_err(|_| unknown())?;
    // The database is searched case-insensitively; Kubernetes is not.
    if tz.iana_name() != Some(name) {
        return Err(unknown());
    }
    Ok(tz)
}

#[cfg(test)]
mod tests;
