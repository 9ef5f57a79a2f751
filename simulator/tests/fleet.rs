//! The synthetic fleet: a valid building, and traffic that is the same for the same seed.

use roomer_occupancy::{Direction, Timestamp, OUTSIDE};
use roomer_simulator::{fleet_dpu_id, fleet_events, fleet_layout};
use std::collections::HashMap;

fn start() -> Timestamp {
    "2024-03-01T07:00:00Z".parse().unwrap()
}

#[test]
fn the_fleet_layout_is_valid_and_spreads_doorways_over_the_rooms() {
    let layout = fleet_layout(7, 3, start());
    layout.validate().expect("a valid layout");

    assert_eq!(layout.spaces.len(), 3);
    assert_eq!(layout.doorways.len(), 7);
    assert_eq!(layout.dpus.len(), 7);
    assert_eq!(layout.dpus[0].id, fleet_dpu_id(1));
    assert_eq!(fleet_dpu_id(1).as_str(), "sim-00001");
    let rooms: Vec<i64> = layout.doorways.iter().map(|d| d.entering_to).collect();
    assert_eq!(rooms, [1, 2, 3, 1, 2, 3, 1]);
    assert!(layout.doorways.iter().all(|d| d.exiting_to == OUTSIDE));
    assert!(layout
        .dpus
        .iter()
        .all(|d| d.installations.len() == 1 && d.installations[0].from == start()));
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
    let a = fleet_events(5, 100, start(), 42);
    assert_eq!(a, fleet_events(5, 100, start(), 42));
    assert_ne!(a, fleet_events(5, 100, start(), 43));
    assert_eq!(a.len(), 500);
}

#[test]
fn each_dpu_walks_forward_in_time_with_plausible_gaps_and_never_below_zero() {
    let events = fleet_events(4, 300, start(), 9);
    let layout = fleet_layout(4, 2, start());
    let mut last_ts: HashMap<String, Timestamp> = HashMap::new();
    let mut inside: HashMap<String, i64> = HashMap::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    for event in &events {
        let dpu = event.dpu.to_string();
        assert!(layout
            .dpus
            .iter()
            .any(|d| d.id == event.dpu && d.installations[0].covers(event.ts)));
        let previous = last_ts.insert(dpu.clone(), event.ts).unwrap_or(start());
        let gap = (event.ts - previous).num_milliseconds();
        assert!((1_000..=120_000).contains(&gap), "gap of {gap} ms");
        let count = inside.entry(dpu.clone()).or_default();
        *count += event.direction.as_i64();
        assert!(*count >= 0, "more people left through {dpu} than came in");
        let id = ids.entry(dpu).or_default();
        *id += 1;
        assert_eq!(event.event_id, Some(*id));
    }
    let ins = events
        .iter()
        .filter(|e| e.direction == Direction::In)
        .count();
    assert!(
        ins > 600 && ins < 900,
        "both directions happen: {ins} of 1200 in"
    );
}
