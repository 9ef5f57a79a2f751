use super::*;
use crate::model::OUTSIDE;

const ROOM: SpaceId = 1;

fn at(minute: i64) -> Timestamp {
    "2018-02-26T00:00:00Z".parse::<Timestamp>().unwrap() + TimeDelta::minutes(minute)
}

fn key(minute: i64, delta: i64, dpu: &str) -> EntryKey {
    EntryKey::new(at(minute), delta, DpuId::new(dpu).unwrap())
}

fn insert(series: &mut SpaceSeries, space: SpaceId, keys: &[EntryKey]) -> usize {
    series.apply(
        space,
        &SpaceChange {
            inserts: keys.to_vec(),
            removes: vec![],
        },
        None,
    )
}

#[test]
fn a_departure_from_an_empty_room_is_absorbed() {
    let mut series = SpaceSeries::default();
    insert(&mut series, ROOM, &[key(1, -1, "a"), key(2, 1, "a")]);
    assert_eq!(series.count_at(at(1), None), 0);
    assert_eq!(series.count_at(at(2), None), 1);
}

#[test]
fn outside_is_not_clamped() {
    let mut series = SpaceSeries::default();
    insert(&mut series, OUTSIDE, &[key(1, -1, "a"), key(2, -1, "a")]);
    assert_eq!(series.current(), -2);
}

#[test]
fn before_any_entry_the_count_is_zero_and_after_the_last_it_is_current() {
    let mut series = SpaceSeries::default();
    insert(&mut series, ROOM, &[key(5, 1, "a"), key(6, 1, "a")]);
    assert_eq!(series.count_at(at(4), None), 0);
    assert_eq!(series.count_at(at(5), None), 1);
    assert_eq!(series.count_at(at(1_000), None), 2);
    assert_eq!(series.current(), 2);
}

#[test]
fn a_late_arrival_corrects_every_later_count() {
    let mut series = SpaceSeries::default();
    insert(
        &mut series,
        ROOM,
        &[key(10, 1, "a"), key(20, 1, "a"), key(30, -1, "a")],
    );
    assert_eq!(series.current(), 1);
    insert(&mut series, ROOM, &[key(5, 1, "b")]);
    assert_eq!(series.count_at(at(5), None), 1);
    assert_eq!(series.count_at(at(10), None), 2);
    assert_eq!(series.count_at(at(20), None), 3);
    assert_eq!(series.current(), 2);
}

#[test]
fn a_late_arrival_stops_correcting_once_the_room_was_empty_anyway() {
    let mut series = SpaceSeries::default();
    // The room empties (an absorbed departure at minute 3), then fills again.
    let history: Vec<EntryKey> = [(1, 1), (2, -1), (3, -1)]
        .into_iter()
        .chain((4..100).map(|m| (m, 1)))
        .map(|(m, d)| key(m, d, "a"))
        .collect();
    insert(&mut series, ROOM, &history);
    assert_eq!(series.current(), 96);
    // A late arrival at minute 0 raises minutes 0..=2; at minute 3 the room is empty in both
    // histories, so the recount stops there: it visits 4 entries, not 100.
    let visited = insert(&mut series, ROOM, &[key(0, 1, "b")]);
    assert_eq!(visited, 4);
    assert_eq!(series.count_at(at(2), None), 1);
    assert_eq!(series.count_at(at(3), None), 0);
    assert_eq!(series.current(), 96);
}

#[test]
fn at_equal_timestamps_arrivals_come_before_departures() {
    let mut series = SpaceSeries::default();
    // The departure is inserted first and from a DPU that sorts first: order is by rank.
    insert(&mut series, ROOM, &[key(1, -1, "a")]);
    insert(&mut series, ROOM, &[key(1, 1, "b")]);
    assert_eq!(series.current(), 0, "+1 then -1 leaves an empty room");
    assert_eq!(series.len(), 2);
}

#[test]
fn removing_an_entry_recounts_from_it() {
    let mut series = SpaceSeries::default();
    insert(
        &mut series,
        ROOM,
        &[key(1, 1, "a"), key(2, 1, "a"), key(3, -1, "a")],
    );
    series.apply(
        ROOM,
        &SpaceChange {
            inserts: vec![],
            removes: vec![key(1, 1, "a")],
        },
        None,
    );
    assert_eq!(series.count_at(at(1), None), 0);
    assert_eq!(series.current(), 0);
}

#[test]
fn recount_reports_convergence_only_after_the_last_change() {
    let last = key(5, 1, "a");
    let mut recount = Recount::new(ROOM, 0, last.clone());
    assert_eq!(recount.visit(&key(1, 1, "a"), Some(1)), Visit::Keep);
    assert_eq!(recount.visit(&last, None), Visit::Update(2));
    assert_eq!(recount.visit(&key(6, -1, "a"), Some(0)), Visit::Update(1));
    assert_eq!(recount.visit(&key(7, -1, "a"), Some(0)), Visit::Converged);
}
