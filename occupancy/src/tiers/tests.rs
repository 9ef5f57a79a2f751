use super::*;
use crate::model::{DpuId, OUTSIDE};
use crate::series::SpaceChange;
use crate::series::SpaceSeries;
use chrono::NaiveTime;
use proptest::prelude::*;
use std::collections::BTreeSet;

const ROOM: SpaceId = 1;

fn base() -> Timestamp {
    "2018-02-26T00:00:00Z".parse().unwrap()
}

fn key(offset_micros: i64, delta: i64, dpu: &str, copy: u32) -> EntryKey {
    EntryKey::new(
        base() + TimeDelta::microseconds(offset_micros),
        delta,
        DpuId::new(dpu).unwrap(),
    )
    .copy(copy)
}

/// Offsets that land in the same minute, hour, day, month and years apart, so that every
/// tier and every gap between buckets is exercised.
fn offset() -> impl Strategy<Value = i64> {
    let second = 1_000_000i64;
    prop_oneof![
        (0..120 * second),
        (0..3 * 3_600 * second),
        (0..5 * 86_400 * second),
        (0..800 * 86_400 * second),
        // On whole hours, where daily resets mostly fall.
        (0..72i64).prop_map(move |h| h * 3_600 * second),
    ]
}

fn entry() -> impl Strategy<Value = EntryKey> {
    (
        offset(),
        prop_oneof![Just(1i64), Just(-1i64)],
        prop_oneof![Just("a"), Just("b")],
        0u32..2,
    )
        .prop_map(|(o, d, dpu, copy)| key(o, d, dpu, copy))
}

fn rule() -> impl Strategy<Value = Option<DailyReset>> {
    let zones = prop_oneof![
        Just(chrono_tz::UTC),
        Just(chrono_tz::Europe::Paris),
        Just(chrono_tz::Asia::Kolkata),
        Just(chrono_tz::America::St_Johns),
    ];
    prop::option::of(
        (0u32..24, prop_oneof![Just(0u32), 0u32..60], zones).prop_map(|(h, m, tz)| DailyReset {
            at: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
            tz,
        }),
    )
}

/// A space, its reset rule (none for Outside), and batches of entries to insert, each with
/// a few of the entries stored so far to remove.
type Batches = Vec<(Vec<EntryKey>, Vec<usize>)>;

fn batches() -> impl Strategy<Value = Batches> {
    prop::collection::vec(
        (
            prop::collection::vec(entry(), 1..25),
            prop::collection::vec(0usize..100, 0..3),
        ),
        1..6,
    )
}

fn case() -> impl Strategy<Value = (SpaceId, Option<DailyReset>, Batches)> {
    prop_oneof![
        (Just(ROOM), rule(), batches()),
        (Just(OUTSIDE), Just(None), batches()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// After any sequence of late inserts and removals, the tiered series counts what the
    /// entry-by-entry series counts at every instant, and its summaries are those a rebuild
    /// from scratch makes.
    #[test]
    fn tiers_count_what_the_series_counts((space, rule, batches) in case()) {
        let mut tiered = TieredSeries::new(space, rule);
        let mut series = SpaceSeries::default();
        let mut stored: Vec<EntryKey> = Vec::new();
        for (inserts, removals) in batches {
            let mut removes: Vec<EntryKey> = removals
                .iter()
                .filter_map(|&i| stored.get(i % stored.len().max(1)).cloned())
                .collect();
            removes.sort();
            removes.dedup();
            let mut inserts: Vec<EntryKey> = inserts
                .into_iter()
                .filter(|k| !stored.contains(k) && !removes.contains(k))
                .collect();
            inserts.sort();
            inserts.dedup();
            stored.retain(|k| !removes.contains(k));
            stored.extend(inserts.iter().cloned());
            let change = SpaceChange { inserts, removes };
            tiered.apply(&change);
            series.apply(space, &change, rule.as_ref());
        }
        let mut probes: Vec<Timestamp> = stored
            .iter()
            .flat_map(|k| [k.ts - TimeDelta::microseconds(1), k.ts, k.ts + TimeDelta::hours(20)])
            .collect();
        probes.push(base() - TimeDelta::days(1));
        probes.push(base() + TimeDelta::days(2_000));
        for t in probes {
            prop_assert_eq!(tiered.count_at(t), series.count_at(t, rule.as_ref()), "at {}", t);
        }
        let rebuilt = tiered.rebuilt();
        for tier in Tier::ALL {
            prop_assert_eq!(tiered.tier(tier), rebuilt.tier(tier), "{:?}", tier);
        }
    }
}

/// A space that never empties: `n` entrances one second apart, then one late entrance
/// before all of them. Answers what the late one read.
fn late_entrance_after(n: i64) -> usize {
    let mut tiered = TieredSeries::new(OUTSIDE, None);
    let later: Vec<EntryKey> = (0..n)
        .map(|i| key((3_600 + i) * 1_000_000, 1, "a", 0))
        .collect();
    tiered.apply(&SpaceChange {
        inserts: later,
        removes: Vec::new(),
    });
    let read = tiered.apply(&SpaceChange {
        inserts: vec![key(0, 1, "b", 0)],
        removes: Vec::new(),
    });
    assert_eq!(tiered.count_at(base() + TimeDelta::days(3_000)), n + 1);
    read
}

#[test]
fn a_late_crossing_reads_the_same_whatever_came_after_it() {
    let few = late_entrance_after(1_000);
    let many = late_entrance_after(200_000);
    // Its minute (one entry), then at most 60 minutes, 24 hours, 30 days and 12 months.
    assert!(many <= 1 + 60 + 24 + 30 + 12, "{many}");
    assert!(many <= few + 24 + 30, "{few} then {many}");
}

/// A room that resets at 04:00 UTC, two people entering at 20:00 the day before.
fn two_in_the_evening_reset_at_four() -> TieredSeries {
    let rule = DailyReset {
        at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
        tz: chrono_tz::UTC,
    };
    let mut tiered = TieredSeries::new(ROOM, Some(rule));
    let evening = 20 * 3_600 * 1_000_000;
    tiered.apply(&SpaceChange {
        inserts: vec![key(evening, 1, "a", 0), key(evening + 1, 1, "a", 0)],
        removes: Vec::new(),
    });
    tiered
}

#[test]
fn a_reset_in_a_gap_between_buckets_empties_the_room() {
    let tiered = two_in_the_evening_reset_at_four();
    assert_eq!(tiered.count_at(base() + TimeDelta::hours(27)), 2);
    assert_eq!(tiered.count_at(base() + TimeDelta::hours(28)), 0);
    assert_eq!(tiered.count_at(base() + TimeDelta::days(400)), 0);
}

#[test]
fn tiers_nest() {
    let t: Timestamp = "2026-12-03T15:04:05.123456Z".parse().unwrap();
    for tier in Tier::ALL {
        let start = tier.floor(t);
        assert!(start <= t && t < tier.end(start), "{tier:?}");
        if let Some(parent) = tier.parent() {
            assert_eq!(parent.seconds() % tier.seconds(), 0);
            assert_eq!(parent.floor(start), parent.floor(t));
        }
    }
    assert_eq!(
        Tier::Hour.floor(t),
        "2026-12-03T15:00:00Z".parse::<Timestamp>().unwrap()
    );
}

/// Consecutive buckets from a start on a whole minute (or anywhere), each a few minutes to a
/// few days long.
fn bounds() -> impl Strategy<Value = Vec<(Timestamp, Timestamp)>> {
    let minute = 60 * 1_000_000i64;
    (
        prop_oneof![
            (-2 * 1_440i64..3 * 1_440).prop_map(move |m| m * minute),
            -(2 * 86_400 * 1_000_000i64)..(3 * 86_400 * 1_000_000),
        ],
        prop::collection::vec(
            prop_oneof![1i64..20, Just(60), Just(1_440), (1i64..5_000)],
            1..12,
        ),
    )
        .prop_map(move |(start, lengths)| {
            let mut from = base() + TimeDelta::microseconds(start);
            lengths
                .into_iter()
                .map(|l| {
                    let to = from + TimeDelta::microseconds(l * minute);
                    let bucket = (from, to);
                    from = to;
                    bucket
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// History buckets from the summaries equal those the raw series makes.
    #[test]
    fn buckets_from_tiers_equal_buckets_from_the_series(
        (space, rule, batches) in case(),
        bounds in bounds(),
    ) {
        let mut tiered = TieredSeries::new(space, rule);
        let mut series = SpaceSeries::default();
        let mut stored = BTreeSet::new();
        for (inserts, _) in batches {
            let inserts: Vec<EntryKey> = inserts.into_iter().filter(|k| stored.insert(k.clone())).collect();
            let change = SpaceChange { inserts, removes: Vec::new() };
            tiered.apply(&change);
            series.apply(space, &change, rule.as_ref());
        }
        let (first, last) = (bounds[0].0, bounds[bounds.len() - 1].1);
        let carried = series.count_at(first - TimeDelta::microseconds(1), rule.as_ref());
        let resets = rule.map(|r| r.instants(first, last)).unwrap_or_default();
        let raw = crate::history::buckets(&bounds, carried, &series.points(first, last), Some(7), &resets);
        prop_assert_eq!(tiered.buckets(&bounds, Some(7)), raw);
    }
}

#[test]
fn a_bucket_that_starts_with_a_reset_starts_from_zero() {
    let tiered = two_in_the_evening_reset_at_four();
    let four = base() + TimeDelta::hours(28);
    let buckets = tiered.buckets(
        &[
            (four - TimeDelta::hours(1), four),
            (four, four + TimeDelta::hours(1)),
        ],
        None,
    );
    let summary: Vec<(i64, i64, i64)> = buckets.iter().map(|b| (b.count, b.min, b.max)).collect();
    assert_eq!(summary, [(2, 2, 2), (0, 0, 0)]);
}

#[test]
fn a_stretch_is_cut_into_the_largest_buckets_that_fit() {
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    assert_eq!(
        pieces(t("2026-12-03T22:58:30Z"), t("2026-12-05T01:02:00Z")),
        [
            Piece::Entries(t("2026-12-03T22:58:30Z"), t("2026-12-03T22:59:00Z")),
            Piece::Bucket(Tier::Minute, t("2026-12-03T22:59:00Z")),
            Piece::Bucket(Tier::Hour, t("2026-12-03T23:00:00Z")),
            Piece::Bucket(Tier::Day, t("2026-12-04T00:00:00Z")),
            Piece::Bucket(Tier::Hour, t("2026-12-05T00:00:00Z")),
            Piece::Bucket(Tier::Minute, t("2026-12-05T01:00:00Z")),
            Piece::Bucket(Tier::Minute, t("2026-12-05T01:01:00Z")),
        ][..]
    );
}

#[test]
fn tiers_floor_any_representable_instant() {
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
    ] {
        let t: Timestamp = text.parse().unwrap();
        assert_eq!(
            Tier::Hour.floor(t),
            hour.parse::<Timestamp>().unwrap(),
            "{text}"
        );
        assert_eq!(
            Tier::Day.floor(t),
            day.parse::<Timestamp>().unwrap(),
            "{text}"
        );
    }
}
