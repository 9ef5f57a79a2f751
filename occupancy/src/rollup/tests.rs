//! The rollup path must answer exactly what the raw path answers: property tests over random
//! series, resets and hour- or day-aligned buckets, plus the cases that tell them apart.

use super::*;
use crate::history;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn at(seconds: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 28, 0, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn point(seconds: i64, arrival: bool, count: i64) -> SeriesPoint {
    SeriesPoint {
        ts: at(seconds),
        arrival,
        count,
    }
}

/// Bounds from cut points given in whole grains from the start.
fn bounds_from(cuts: &[i64], grain: Grain) -> Vec<(Timestamp, Timestamp)> {
    let len = grain.length().num_seconds();
    cuts.windows(2)
        .map(|w| (at(w[0] * len), at(w[1] * len)))
        .collect()
}

fn both(
    bounds: &[(Timestamp, Timestamp)],
    carried_in: i64,
    points: &[SeriesPoint],
    resets: &[Timestamp],
    grain: Grain,
) -> (Vec<Bucket>, Vec<Bucket>) {
    let raw = history::buckets(bounds, carried_in, points, Some(10), resets);
    let rolled = buckets(
        bounds,
        carried_in,
        &summarize(points, grain),
        Some(10),
        resets,
    );
    (raw, rolled)
}

#[test]
fn a_reset_between_two_crossings_of_one_hour_shows_in_the_minimum_only() {
    let points = [point(600, true, 3), point(1800, true, 4)];
    let resets = [at(1200)];
    let (raw, rolled) = both(
        &bounds_from(&[0, 1, 2], Grain::Hour),
        2,
        &points,
        &resets,
        Grain::Hour,
    );
    assert_eq!(raw, rolled);
    assert_eq!((rolled[0].min, rolled[0].max, rolled[0].count), (0, 4, 4));
    assert_eq!(
        (rolled[1].min, rolled[1].count),
        (4, 4),
        "the next hour carries 4 in"
    );
}

#[test]
fn a_reset_after_the_last_crossing_empties_the_bucket_and_the_next_starts_at_zero() {
    let points = [point(600, true, 3)];
    let resets = [at(3000), at(3600)];
    let (raw, rolled) = both(
        &bounds_from(&[0, 1, 2], Grain::Hour),
        0,
        &points,
        &resets,
        Grain::Hour,
    );
    assert_eq!(raw, rolled);
    assert_eq!((rolled[0].count, rolled[0].min), (0, 0));
    assert_eq!((rolled[1].count, rolled[1].max), (0, 0));
}

#[test]
fn a_reset_at_the_instant_of_a_crossing_comes_first() {
    let points = [point(1200, true, 1)];
    let resets = [at(1200)];
    let (raw, rolled) = both(
        &bounds_from(&[0, 1], Grain::Hour),
        5,
        &points,
        &resets,
        Grain::Hour,
    );
    assert_eq!(raw, rolled);
    assert_eq!((rolled[0].count, rolled[0].min, rolled[0].max), (1, 0, 5));
}

#[test]
fn grains_fit_only_aligned_bounds() {
    let hours = bounds_from(&[0, 1, 3], Grain::Hour);
    assert_eq!(Grain::for_bounds(&hours), Some(Grain::Hour));
    let days = bounds_from(&[0, 1, 8], Grain::Day);
    assert_eq!(Grain::for_bounds(&days), Some(Grain::Day));
    let half_hours = [(at(1800), at(5400))];
    assert_eq!(Grain::for_bounds(&half_hours), None);
}

fn series() -> impl Strategy<Value = Vec<SeriesPoint>> {
    // Up to three days of crossings; several may share an instant.
    prop::collection::vec((0i64..3 * 86_400 / 60, any::<bool>(), 0i64..12), 0..60).prop_map(
        |mut raw| {
            raw.sort_by_key(|(minute, _, _)| *minute);
            raw.into_iter()
                .map(|(minute, arrival, count)| point(minute * 60, arrival, count))
                .collect()
        },
    )
}

fn resets() -> impl Strategy<Value = Vec<Timestamp>> {
    // On a minute, so that some coincide with a crossing or a bucket bound.
    prop::collection::btree_set(0i64..3 * 86_400 / 60, 0..6)
        .prop_map(|set| set.into_iter().map(|m| at(m * 60)).collect())
}

fn cuts(max: i64) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::btree_set(0..=max, 2..8).prop_map(|set| set.into_iter().collect())
}

proptest! {
    #[test]
    fn hourly_rollups_answer_like_the_raw_series(
        points in series(),
        resets in resets(),
        cuts in cuts(72),
        carried_in in 0i64..6,
    ) {
        let bounds = bounds_from(&cuts, Grain::Hour);
        let first = bounds[0].0;
        let points: Vec<_> = points.into_iter().filter(|p| p.ts >= first).collect();
        let resets: Vec<_> = resets.into_iter().filter(|r| *r > first - TimeDelta::days(1)).collect();
        let (raw, rolled) = both(&bounds, carried_in, &points, &resets, Grain::Hour);
        prop_assert_eq!(raw, rolled);
    }

    #[test]
    fn daily_rollups_answer_like_the_raw_series(
        points in series(),
        resets in resets(),
        cuts in cuts(3),
        carried_in in 0i64..6,
    ) {
        let bounds = bounds_from(&cuts, Grain::Day);
        let first = bounds[0].0;
        let points: Vec<_> = points.into_iter().filter(|p| p.ts >= first).collect();
        let (raw, rolled) = both(&bounds, carried_in, &points, &resets, Grain::Day);
        prop_assert_eq!(raw, rolled);
    }

    #[test]
    fn daily_summaries_are_hourly_summaries_rolled_up(points in series()) {
        let hours = summarize(&points, Grain::Hour);
        let days = summarize(&points, Grain::Day);
        // As the daily continuous aggregate makes them: grouped hours.
        let mut rolled: Vec<Summary> = Vec::new();
        for h in hours {
            let start = Grain::Day.floor(h.start);
            match rolled.last_mut() {
                Some(d) if d.start == start => {
                    d.entrances += h.entrances;
                    d.exits += h.exits;
                    d.min = d.min.min(h.min);
                    d.max = d.max.max(h.max);
                    d.last = h.last;
                    d.last_ts = h.last_ts;
                }
                _ => rolled.push(Summary { start, ..h }),
            }
        }
        prop_assert_eq!(days, rolled);
    }
}

#[test]
fn grains_floor_any_representable_instant() {
    for (text, hour, day) in [
        (
            "1600-01-01T12:34:56.789Z",
            "1600-01-01T12:00:00Z",
            "1600-01-01T00:00:00Z",
        ),
        (
            "2263-06-01T23:59:59Z",
            "2263-06-01T23:00:00Z",
            "2263-06-01T00:00:00Z",
        ),
        (
            "0001-01-01T00:30:00Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
        ),
        (
            "2024-03-31T01:59:59.999999Z",
            "2024-03-31T01:00:00Z",
            "2024-03-31T00:00:00Z",
        ),
    ] {
        let t: Timestamp = text.parse().unwrap();
        assert_eq!(
            Grain::Hour.floor(t),
            hour.parse::<Timestamp>().unwrap(),
            "{text}"
        );
        assert_eq!(
            Grain::Day.floor(t),
            day.parse::<Timestamp>().unwrap(),
            "{text}"
        );
    }
}
