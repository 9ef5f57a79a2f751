//! How the walk places daily resets among crossings and bucket bounds.

use super::*;
use crate::history;
use chrono::{TimeDelta, TimeZone, Utc};

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

/// Hours from the start, cut at the given hour counts.
fn hours(cuts: &[i64]) -> Vec<(Timestamp, Timestamp)> {
    cuts.windows(2)
        .map(|w| (at(w[0] * 3_600), at(w[1] * 3_600)))
        .collect()
}

#[test]
fn a_reset_between_two_crossings_of_one_hour_shows_in_the_minimum_only() {
    let points = [point(600, true, 3), point(1800, true, 4)];
    let resets = [at(1200)];
    let rolled = history::buckets(&hours(&[0, 1, 2]), 2, &points, Some(10), &resets);
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
    let rolled = history::buckets(&hours(&[0, 1, 2]), 0, &points, Some(10), &resets);
    assert_eq!((rolled[0].count, rolled[0].min), (0, 0));
    assert_eq!((rolled[1].count, rolled[1].max), (0, 0));
}

#[test]
fn a_reset_at_the_instant_of_a_crossing_comes_first() {
    let points = [point(1200, true, 1)];
    let resets = [at(1200)];
    let rolled = history::buckets(&hours(&[0, 1]), 5, &points, Some(10), &resets);
    assert_eq!((rolled[0].count, rolled[0].min, rolled[0].max), (1, 0, 5));
}
