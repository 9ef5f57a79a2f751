use super::*;
use chrono_tz::{Asia::Kolkata, Europe::Paris, UTC};
use proptest::prelude::*;

fn utc(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn hours(bucket: &(Timestamp, Timestamp)) -> i64 {
    (bucket.1 - bucket.0).num_hours()
}

#[test]
fn intervals_are_the_six_the_api_offers() {
    for (text, interval) in [
        ("1m", Interval::Minutes(1)),
        ("5m", Interval::Minutes(5)),
        ("15m", Interval::Minutes(15)),
        ("1h", Interval::Minutes(60)),
        ("1d", Interval::Day),
        ("1w", Interval::Week),
    ] {
        assert_eq!(text.parse::<Interval>(), Ok(interval));
    }
    assert!("2h".parse::<Interval>().is_err());
}

#[test]
fn paris_days_last_23_and_25_hours_when_the_clocks_change() {
    // 2026-03-29: clocks go from 02:00 to 03:00; 2026-10-25: from 03:00 back to 02:00.
    let spring = boundaries(
        utc("2026-03-28T12:00:00Z"),
        utc("2026-03-30T12:00:00Z"),
        Interval::Day,
        Paris,
        100,
    );
    assert_eq!(spring.iter().map(hours).collect::<Vec<_>>(), [24, 23, 24]);
    assert_eq!(
        spring[1].0,
        utc("2026-03-28T23:00:00Z"),
        "local midnight, CET"
    );
    assert_eq!(
        spring[2].0,
        utc("2026-03-29T22:00:00Z"),
        "local midnight, CEST"
    );

    let autumn = boundaries(
        utc("2026-10-25T00:00:00Z"),
        utc("2026-10-25T12:00:00Z"),
        Interval::Day,
        Paris,
        100,
    );
    assert_eq!(autumn.iter().map(hours).collect::<Vec<_>>(), [25]);
    let hourly = boundaries(autumn[0].0, autumn[0].1, Interval::Minutes(60), Paris, 100);
    assert_eq!(hourly.len(), 25, "an hour per real hour on the long day");
    assert!(hourly.iter().all(|b| hours(b) == 1));
}

#[test]
fn weeks_start_on_local_monday_midnight() {
    let weeks = boundaries(
        utc("2026-11-26T10:00:00Z"), // a Thursday
        utc("2026-11-27T10:00:00Z"),
        Interval::Week,
        Paris,
        10,
    );
    assert_eq!(
        weeks,
        [(utc("2026-11-22T23:00:00Z"), utc("2026-11-29T23:00:00Z"))]
    );
}

#[test]
fn sub_day_buckets_align_to_the_local_clock() {
    // India is 5 h 30 min ahead of UTC: local hours start at half past in UTC.
    let hourly = boundaries(
        utc("2026-11-28T10:47:00Z"),
        utc("2026-11-28T12:00:00Z"),
        Interval::Minutes(60),
        Kolkata,
        10,
    );
    assert_eq!(hourly[0].0, utc("2026-11-28T10:30:00Z"));
    assert_eq!(hourly.len(), 2);
    let quarter = boundaries(
        utc("2026-11-28T10:47:00Z"),
        utc("2026-11-28T10:47:01Z"),
        Interval::Minutes(15),
        UTC,
        10,
    );
    assert_eq!(
        quarter,
        [(utc("2026-11-28T10:45:00Z"), utc("2026-11-28T11:00:00Z"))]
    );
}

#[test]
fn a_bucket_has_its_closing_count_range_and_crossings() {
    let p = |ts: &str, arrival, count| SeriesPoint {
        ts: utc(ts),
        arrival,
        count,
    };
    let points = [
        p("2026-01-01T10:05:00Z", true, 3),
        p("2026-01-01T10:20:00Z", true, 4),
        p("2026-01-01T10:40:00Z", false, 3),
        p("2026-01-01T12:10:00Z", false, 2),
    ];
    let bounds = boundaries(
        utc("2026-01-01T10:00:00Z"),
        utc("2026-01-01T13:00:00Z"),
        Interval::Minutes(60),
        UTC,
        10,
    );
    let got = buckets(&bounds, 2, &points, Some(8), &[]);
    let summary: Vec<_> = got
        .iter()
        .map(|b| (b.count, b.min, b.max, b.entrances, b.exits))
        .collect();
    assert_eq!(summary, [(3, 2, 4, 2, 1), (3, 3, 3, 0, 0), (2, 2, 3, 0, 1)]);
    assert_eq!(got[0].utilization, Some(3.0 / 8.0));
}

fn series() -> impl Strategy<Value = (i64, Vec<SeriesPoint>)> {
    let base = utc("2026-03-28T00:00:00Z");
    (
        0..5i64,
        prop::collection::vec((0..(4 * 24 * 60i64), any::<bool>()), 0..60),
    )
        .prop_map(move |(start_count, mut raw)| {
            raw.sort();
            let mut count = start_count;
            let points = raw
                .into_iter()
                .map(|(minute, arrival)| {
                    count = if arrival {
                        count + 1
                    } else {
                        (count - 1).max(0)
                    };
                    SeriesPoint {
                        ts: base + Duration::minutes(minute),
                        arrival,
                        count,
                    }
                })
                .collect();
            (start_count, points)
        })
}

proptest! {
    /// Against the obvious definition, bucket by bucket, in a zone with a DST change.
    #[test]
    fn buckets_agree_with_a_point_by_point_reading(
        (carried, points) in series(),
        from in 0..(4 * 24 * 60i64),
        span in 1..(3 * 24 * 60i64),
        interval in prop::sample::select(vec![
            Interval::Minutes(5), Interval::Minutes(60), Interval::Day, Interval::Week,
        ]),
    ) {
        let base = utc("2026-03-28T00:00:00Z");
        let (start, end) = (base + Duration::minutes(from), base + Duration::minutes(from + span));
        let bounds = boundaries(start, end, interval, Paris, usize::MAX);
        prop_assert!(bounds[0].0 <= start && bounds.last().unwrap().1 >= end);
        prop_assert!(bounds.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
        // The series as the caller passes it: the count before the first bucket, then the rest.
        let first = bounds[0].0;
        let before: Vec<_> = points.iter().filter(|p| p.ts < first).collect();
        let carried_in = before.last().map_or(carried, |p| p.count);
        let from_first: Vec<_> = points.iter().copied().filter(|p| p.ts >= first).collect();
        for (bucket, &(s, e)) in buckets(&bounds, carried_in, &from_first, None, &[]).iter().zip(&bounds) {
            let upto: Vec<_> = points.iter().filter(|p| p.ts < e).collect();
            let inside: Vec<_> = points.iter().filter(|p| p.ts >= s && p.ts < e).collect();
            let opening = points.iter().rfind(|p| p.ts < s).map_or(carried, |p| p.count);
            prop_assert_eq!(bucket.count, upto.last().map_or(carried, |p| p.count));
            let counts = std::iter::once(opening).chain(inside.iter().map(|p| p.count));
            prop_assert_eq!(bucket.min, counts.clone().min().unwrap());
            prop_assert_eq!(bucket.max, counts.max().unwrap());
            prop_assert_eq!(bucket.entrances, inside.iter().filter(|p| p.arrival).count() as u64);
            prop_assert_eq!(bucket.exits, inside.iter().filter(|p| !p.arrival).count() as u64);
        }
    }
}

#[test]
fn a_reset_inside_a_bucket_brings_its_minimum_and_closing_count_to_zero() {
    let p = |ts: &str, arrival, count| SeriesPoint {
        ts: utc(ts),
        arrival,
        count,
    };
    // 3 people at 02:30; the 03:00 reset; one arrives at 03:30.
    let points = [
        p("2026-01-01T02:30:00Z", true, 3),
        p("2026-01-01T03:30:00Z", true, 1),
    ];
    let bounds = boundaries(
        utc("2026-01-01T02:00:00Z"),
        utc("2026-01-01T05:00:00Z"),
        Interval::Minutes(60),
        UTC,
        10,
    );
    let resets = [utc("2026-01-01T03:00:00Z")];
    let got: Vec<_> = buckets(&bounds, 2, &points, None, &resets)
        .iter()
        .map(|b| (b.count, b.min, b.max))
        .collect();
    // The reset falls on the second hour's first instant: that hour opens empty.
    assert_eq!(got, [(3, 2, 3), (1, 0, 1), (1, 1, 1)]);
    // A reset after the hour's last crossing leaves the hour at 0.
    let late_reset = [utc("2026-01-01T02:45:00Z")];
    let got = buckets(&bounds[..1], 2, &points[..1], None, &late_reset);
    assert_eq!((got[0].count, got[0].min, got[0].max), (0, 0, 3));
}
