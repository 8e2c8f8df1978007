#![allow(clippy::unwrap_used)]

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn tz(name: &str) -> TimeZone {
    time_zone(name).unwrap()
}

fn expanded(s: &str) -> String {
    Schedule::parse(s).unwrap().to_string()
}

#[test]
fn field_forms() {
    let cases = [
        ("* * * * *", "* * * * *"),
        ("? ? ? ? ?", "* * * * *"),
        ("5 4 3 2 1", "5 4 3 2 1"),
        (
            "0-4 22-23 1-3 11-12 0-2",
            "0,1,2,3,4 22,23 1,2,3 11,12 0,1,2",
        ),
        ("1,7,59 0,12 15,31 1,6 6,0", "1,7,59 0,12 15,31 1,6 0,6"),
        (
            "*/15 */6 */10 */4 */3",
            "0,15,30,45 0,6,12,18 1,11,21,31 1,5,9 0,3,6",
        ),
        ("10-30/10 1-10/3 * * *", "10,20,30 1,4,7,10 * * *"),
        ("50/5 20/2 28/2 11/1 5/1", "50,55 20,22 28,30 11,12 5,6"),
        ("0 0 * JAN,jun-Aug MON-FRI", "0 0 * 1,6,7,8 1,2,3,4,5"),
        ("0 0 * * sun,SAT", "0 0 * * 0,6"),
        ("0 0 * dec/1 Wed/2", "0 0 * 12 3,5"),
        ("  0\t0  * *   *  ", "0 0 * * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ];
    for (input, want) in cases {
        assert_eq!(expanded(input), want, "{input}");
    }
    assert_eq!("0 0 1 * *".parse::<Schedule>(), Schedule::parse("@monthly"));
}

#[test]
fn star_steps_and_the_day_rule() {
    let star = |s: &str| {
        let p = Schedule::parse(s).unwrap();
        (p.dom_star, p.dow_star)
    };
    assert_eq!(star("0 0 * * *"), (true, true));
    assert_eq!(star("0 0 ? * MON"), (true, false));
    assert_eq!(star("0 0 */1 * 1"), (true, false));
    assert_eq!(
        star("0 0 */2 * 1"),
        (false, false),
        "a stepped star restricts"
    );
    assert_eq!(star("0 0 1,* * 1"), (true, false));
}

#[test]
fn invalid_schedules() {
    let field = |f: &'static str, text: &str, reason: &str| CronError::Field {
        field: f,
        text: text.into(),
        reason: reason.into(),
    };
    let cases = [
        ("", CronError::Empty),
        ("   ", CronError::Empty),
        ("TZ=UTC 0 0 * * *", CronError::TimeZoneInSchedule),
        (
            "CRON_TZ=Europe/Berlin 0 0 * * *",
            CronError::TimeZoneInSchedule,
        ),
        ("0 0 * *", CronError::FieldCount(4)),
        ("0 0 0 * * *", CronError::FieldCount(6)),
        ("@every 1h", CronError::Every),
        ("@reboot", CronError::Descriptor("@reboot".into())),
        ("@daily 0", CronError::Descriptor("@daily 0".into())),
        ("@DAILY", CronError::Descriptor("@DAILY".into())),
        (
            "60 * * * *",
            field("minute", "60", "60 is above the maximum 59"),
        ),
        (
            "* 24 * * *",
            field("hour", "24", "24 is above the maximum 23"),
        ),
        (
            "* * 0 * *",
            field("day-of-month", "0", "0 is below the minimum 1"),
        ),
        (
            "* * 32 * *",
            field("day-of-month", "32", "32 is above the maximum 31"),
        ),
        (
            "* * * 13 *",
            field("month", "13", "13 is above the maximum 12"),
        ),
        ("* * * 0 *", field("month", "0", "0 is below the minimum 1")),
        (
            "* * * * 7",
            field("day-of-week", "7", "7 is above the maximum 6"),
        ),
        (
            "5-1 * * * *",
            field("minute", "5-1", "the range 5-1 runs backwards"),
        ),
        (
            "*/0 * * * *",
            field("minute", "*/0", "a step must be at least 1"),
        ),
        (
            "*/ * * * *",
            field("minute", "*/", "the step \"\" is not a number"),
        ),
        (
            "*/x * * * *",
            field("minute", "*/x", "the step \"x\" is not a number"),
        ),
        (
            "1/2/3 * * * *",
            field("minute", "1/2/3", "too many slashes"),
        ),
        (
            "1,,2 * * * *",
            field("minute", "1,,2", "a value is missing"),
        ),
        ("1- * * * *", field("minute", "1-", "a value is missing")),
        ("-1 * * * *", field("minute", "-1", "a value is missing")),
        (
            "L * * * *",
            field("minute", "L", "\"L\" is not a number or a name"),
        ),
        (
            "* * L * *",
            field("day-of-month", "L", "\"L\" is not a number or a name"),
        ),
        (
            "* * * * 1#2",
            field("day-of-week", "1#2", "\"1#2\" is not a number or a name"),
        ),
        (
            "* * * JANUARY *",
            field("month", "JANUARY", "\"JANUARY\" is not a number or a name"),
        ),
        (
            "* * * * MON-JAN",
            field(
                "day-of-week",
                "MON-JAN",
                "\"JAN\" is not a number or a name",
            ),
        ),
        (
            "* * * MON *",
            field("month", "MON", "\"MON\" is not a number or a name"),
        ),
        (
            "99999999999 * * * *",
            field("minute", "99999999999", "99999999999 is too large"),
        ),
        (
            "*/99999999999 * * * *",
            field(
                "minute",
                "*/99999999999",
                "the step 99999999999 is too large",
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(Schedule::parse(input), Err(want), "{input}");
    }
    assert_eq!(
        Schedule::parse("* * * * 7").unwrap_err().to_string(),
        "day-of-week field \"7\": 7 is above the maximum 6"
    );
}

#[test]
fn next_runs_across_month_ends() {
    let utc = TimeZone::UTC;
    let next = |s: &str, after: &str| Schedule::parse(s).unwrap().next_after(&utc, ts(after));
    // The 31st skips the months without one.
    assert_eq!(
        next("0 0 31 * *", "2026-01-31T00:00:00Z"),
        Some(ts("2026-03-31T00:00:00Z"))
    );
    assert_eq!(
        next("0 0 30 * *", "2026-01-30T12:00:00Z"),
        Some(ts("2026-03-30T00:00:00Z"))
    );
    assert_eq!(
        next("59 23 * * *", "2026-12-31T23:59:00Z"),
        Some(ts("2027-01-01T23:59:00Z"))
    );
    assert_eq!(
        next("0 0 1 * *", "2026-12-15T08:00:00Z"),
        Some(ts("2027-01-01T00:00:00Z"))
    );
    // Strictly after, to the next whole minute.
    assert_eq!(
        next("* * * * *", "2026-05-01T10:00:00Z"),
        Some(ts("2026-05-01T10:01:00Z"))
    );
    assert_eq!(
        next("* * * * *", "2026-05-01T10:00:59.9Z"),
        Some(ts("2026-05-01T10:01:00Z"))
    );
    assert_eq!(
        next("*/20 9-17 * * MON-FRI", "2026-05-01T17:40:00Z"),
        Some(ts("2026-05-04T09:00:00Z"))
    );
    // Either day field when both are restricted; both when one is a star.
    assert_eq!(
        next("0 0 13 * FRI", "2026-02-01T00:00:00Z"),
        Some(ts("2026-02-06T00:00:00Z"))
    );
    assert_eq!(
        next("0 0 13 * FRI", "2026-02-06T00:00:00Z"),
        Some(ts("2026-02-13T00:00:00Z"))
    );
    assert_eq!(
        next("0 0 ? * FRI", "2026-02-01T00:00:00Z"),
        Some(ts("2026-02-06T00:00:00Z"))
    );
    assert_eq!(
        next("0 0 13 * *", "2026-02-01T00:00:00Z"),
        Some(ts("2026-02-13T00:00:00Z"))
    );
    assert_eq!(
        next("0 0 */2 * MON", "2026-02-01T00:00:00Z"),
        Some(ts("2026-02-02T00:00:00Z")),
        "Monday the 2nd"
    );
    assert_eq!(
        next("0 0 */2 * MON", "2026-02-02T00:00:00Z"),
        Some(ts("2026-02-03T00:00:00Z")),
        "the 3rd is odd"
    );
}

#[test]
fn next_runs_in_leap_years() {
    let utc = TimeZone::UTC;
    let s = Schedule::parse("0 12 29 2 *").unwrap();
    assert_eq!(
        s.next_after(&utc, ts("2025-03-01T00:00:00Z")),
        Some(ts("2028-02-29T12:00:00Z"))
    );
    assert_eq!(
        s.next_after(&utc, ts("2024-02-29T11:00:00Z")),
        Some(ts("2024-02-29T12:00:00Z"))
    );
    // 2100 is not a leap year: eight years apart.
    assert_eq!(
        s.next_after(&utc, ts("2096-03-01T00:00:00Z")),
        Some(ts("2104-02-29T12:00:00Z"))
    );
    assert_eq!(
        s.latest_at_or_before(&utc, ts("2104-02-28T00:00:00Z")),
        Some(ts("2096-02-29T12:00:00Z"))
    );
    let never = Schedule::parse("0 0 30 2 *").unwrap();
    assert_eq!(never.next_after(&utc, ts("2026-01-01T00:00:00Z")), None);
    assert_eq!(
        never.latest_at_or_before(&utc, ts("2026-01-01T00:00:00Z")),
        None
    );
    let end_of_feb = Schedule::parse("0 0 28,29 2 *").unwrap();
    assert_eq!(
        end_of_feb.next_after(&utc, ts("2027-02-28T00:00:00Z")),
        Some(ts("2028-02-28T00:00:00Z"))
    );
}

#[test]
fn daylight_saving_in_berlin() {
    let berlin = tz("Europe/Berlin");
    let s = Schedule::parse("30 2 * * *").unwrap();
    // 2026-03-29: 02:00 CET becomes 03:00 CEST, 02:30 does not exist and does not run.
    assert_eq!(
        s.next_after(&berlin, ts("2026-03-28T12:00:00Z")),
        Some(ts("2026-03-30T00:30:00Z"))
    );
    // 2026-10-25: 03:00 CEST becomes 02:00 CET, 02:30 happens twice and runs once.
    assert_eq!(
        s.next_after(&berlin, ts("2026-10-24T12:00:00Z")),
        Some(ts("2026-10-25T00:30:00Z"))
    );
    assert_eq!(
        s.next_after(&berlin, ts("2026-10-25T00:30:00Z")),
        Some(ts("2026-10-26T01:30:00Z"))
    );
    let hourly = Schedule::parse("0 * * * *").unwrap();
    assert_eq!(
        hourly.next_after(&berlin, ts("2026-10-25T00:30:00Z")),
        Some(ts("2026-10-25T02:00:00Z"))
    );
    assert_eq!(
        hourly.next_after(&berlin, ts("2026-03-29T00:30:00Z")),
        Some(ts("2026-03-29T01:00:00Z"))
    );
    let quarter = Schedule::parse("*/15 * * * *").unwrap();
    assert_eq!(
        quarter.next_after(&berlin, ts("2026-03-29T00:50:00Z")),
        Some(ts("2026-03-29T01:00:00Z")),
        "03:00 CEST"
    );
    assert_eq!(
        quarter.latest_at_or_before(&berlin, ts("2026-03-29T01:00:00Z")),
        Some(ts("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        quarter.latest_at_or_before(&berlin, ts("2026-03-29T00:59:00Z")),
        Some(ts("2026-03-29T00:45:00Z"))
    );
}

#[test]
fn daylight_saving_in_new_york() {
    let ny = tz("America/New_York");
    // 2026-03-08: 02:00 EST becomes 03:00 EDT; a yearly 02:30 on March 8 waits for 2027.
    let s = Schedule::parse("30 2 8 3 *").unwrap();
    assert_eq!(
        s.next_after(&ny, ts("2026-03-01T00:00:00Z")),
        Some(ts("2027-03-08T07:30:00Z"))
    );
    // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 runs at its EDT instant only.
    let s = Schedule::parse("30 1 * * *").unwrap();
    assert_eq!(
        s.next_after(&ny, ts("2026-10-31T12:00:00Z")),
        Some(ts("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        s.next_after(&ny, ts("2026-11-01T05:30:00Z")),
        Some(ts("2026-11-02T06:30:00Z"))
    );
    assert_eq!(
        s.next_after(&ny, ts("2026-11-01T06:10:00Z")),
        Some(ts("2026-11-02T06:30:00Z"))
    );
    // In the second 01:xx hour, 01:30 already ran at 05:30Z.
    assert_eq!(
        s.latest_at_or_before(&ny, ts("2026-11-01T06:10:00Z")),
        Some(ts("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        s.latest_at_or_before(&ny, ts("2026-11-01T05:29:00Z")),
        Some(ts("2026-10-31T05:30:00Z"))
    );
}

#[test]
fn missed_runs() {
    let utc = TimeZone::UTC;
    let hourly = Schedule::parse("@hourly").unwrap();
    let missed_at = |last: &str, now: &str| missed(&hourly, &utc, ts(last), ts(now));
    assert_eq!(
        missed_at("2026-05-01T10:00:00Z", "2026-05-01T13:20:00Z"),
        Some(ts("2026-05-01T13:00:00Z"))
    );
    assert_eq!(
        missed_at("2026-05-01T13:00:00Z", "2026-05-01T13:20:00Z"),
        None
    );
    assert_eq!(
        missed_at("2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"),
        Some(ts("2026-05-01T14:00:00Z"))
    );
    assert_eq!(
        missed_at("2026-05-01T14:00:00Z", "2026-05-01T13:00:00Z"),
        None
    );
    let ny = tz("America/New_York");
    let s = Schedule::parse("30 1 * * *").unwrap();
    assert_eq!(
        missed(
            &s,
            &ny,
            ts("2026-11-01T05:00:00Z"),
            ts("2026-11-01T06:10:00Z")
        ),
        Some(ts("2026-11-01T05:30:00Z"))
    );
    let berlin = tz("Europe/Berlin");
    let s = Schedule::parse("30 2 * * *").unwrap();
    assert_eq!(
        missed(
            &s,
            &berlin,
            ts("2026-03-28T01:30:00Z"),
            ts("2026-03-29T12:00:00Z")
        ),
        None,
        "02:30 did not exist"
    );
    assert_eq!(
        next(&s, &berlin, ts("2026-03-28T01:30:00Z")),
        Some(ts("2026-03-30T00:30:00Z"))
    );
}

#[test]
fn next_and_latest_agree() {
    for (schedule, zone) in [
        ("*/7 * * * *", "Europe/Berlin"),
        ("0 1-3 * * *", "America/New_York"),
        ("30 2 * * 0", "Europe/Berlin"),
        ("15 0,12 1,15 * MON", "Australia/Lord_Howe"),
    ] {
        let s = Schedule::parse(schedule).unwrap();
        let zone = tz(zone);
        for start in [
            "2026-03-07T00:00:00Z",
            "2026-10-24T00:00:00Z",
            "2026-03-28T00:00:00Z",
        ] {
            let mut prev = s.latest_at_or_before(&zone, ts(start)).unwrap();
            let mut t = ts(start);
            for _ in 0..200 {
                let n = s.next_after(&zone, t).unwrap();
                assert!(n > t);
                assert_eq!(s.latest_at_or_before(&zone, n), Some(n), "{schedule} {n}");
                let just_before = n.checked_sub(SignedDuration::from_secs(1)).unwrap();
                assert_eq!(
                    s.latest_at_or_before(&zone, just_before),
                    Some(prev),
                    "{schedule} {n}"
                );
                prev = n;
                t = n;
            }
        }
    }
}

#[test]
fn time_zones() {
    assert_eq!(tz("Europe/Berlin").iana_name(), Some("Europe/Berlin"));
    assert_eq!(tz("UTC"), TimeZone::UTC);
    assert!(time_zone("Etc/GMT+5").is_ok());
    let unknown = |n: &str| Err(CronError::UnknownTimeZone(n.into()));
    assert_eq!(time_zone("Mars/Olympus_Mons"), unknown("Mars/Olympus_Mons"));
    assert_eq!(time_zone("europe/berlin"), unknown("europe/berlin"));
    assert_eq!(time_zone("../etc/passwd"), unknown("../etc/passwd"));
    assert_eq!(time_zone("Europe/Berlin "), unknown("Europe/Berlin "));
    assert_eq!(time_zone("Etc/Unknown"), unknown("Etc/Unknown"));
    assert_eq!(time_zone(""), Err(CronError::EmptyTimeZone));
    assert_eq!(time_zone("Local"), Err(CronError::LocalTimeZone));
    assert_eq!(
        time_zone("Mars/Olympus_Mons").unwrap_err().to_string(),
        "unknown time zone Mars/Olympus_Mons"
    );
}
