//! Random buildings, event sets and ways of delivering them, for property tests.
//!
//! Scenarios are small on purpose (a few spaces, a few DPUs, timestamps on a coarse grid) so
//! that the interesting cases happen often: equal timestamps, events on installation
//! boundaries, DPUs that are unknown or moved, departures from empty rooms, repeats.

use crate::layout::{DpuLayout, Layout};
use crate::model::{Crossing, Direction, Doorway, DpuId, Installation, Space, Timestamp};
use chrono::TimeDelta;
use proptest::prelude::*;
use std::collections::HashMap;

/// DPU ids the scenarios use; the last one is never installed.
pub const DPUS: [&str; 4] = ["d0", "d1", "d2", "ghost"];

pub fn base_time() -> Timestamp {
    "2018-02-26T08:00:00Z".parse().expect("constant")
}

fn minute(m: i64) -> Timestamp {
    base_time() + TimeDelta::minutes(m)
}

/// One way the same events can reach the backend.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The layout in force at the end.
    pub layout: Layout,
    /// A wrong layout applied first (before any event), later corrected by `layout`.
    pub interim: Option<Layout>,
    /// The distinct crossings that happened (by key; the messages may add others at the same
    /// keys under other ids, see [`scenario`]).
    pub events: Vec<Crossing>,
    /// The messages as delivered: shuffled, repeated and cut into batches.
    pub batches: Vec<Vec<Crossing>>,
    /// `layout` is applied before this batch (`batches.len()`: after all of them).
    pub layout_before_batch: usize,
}

/// Event ids come from this few, per DPU.
const ID_POOL: u64 = 12;

impl Scenario {
    /// Every message delivered, in delivery order.
    pub fn messages(&self) -> Vec<Crossing> {
        self.batches.concat()
    }

    /// Instants worth checking: every event time and every reset in the hour, a microsecond
    /// either side, and far out.
    pub fn probe_times(&self) -> Vec<Timestamp> {
        let mut times = vec![minute(-1), minute(10_000)];
        let resets = self.layout.spaces.iter().flat_map(|s| {
            crate::reset::DailyReset::of(s.id, &self.layout.spaces)
                .map(|rule| rule.instants(minute(-1), minute(70)))
                .unwrap_or_default()
        });
        for at in self.events.iter().map(|e| e.ts).chain(resets) {
            for delta in [-1, 0, 1] {
                times.push(at + TimeDelta::microseconds(delta));
            }
        }
        times.sort();
        times.dedup();
        times
    }

    pub fn space_ids(&self) -> Vec<i64> {
        std::iter::once(crate::model::OUTSIDE)
            .chain(self.layout.spaces.iter().map(|s| s.id))
            .collect()
    }
}

fn histories(doorways: usize) -> impl Strategy<Value = Vec<DpuLayout>> {
    let one = prop::collection::vec(
        (0i64..15, 1i64..25, 0..doorways as i64, any::<bool>()),
        0..=3,
    );
    prop::collection::vec(one, 3).prop_map(|per_dpu| {
        per_dpu
            .into_iter()
            .enumerate()
            .map(|(i, spans)| {
                let mut cursor = 0;
                let count = spans.len();
                let installations = spans
                    .into_iter()
                    .enumerate()
                    .map(|(j, (gap, len, doorway, open))| {
                        let from = cursor + gap;
                        cursor = from + len;
                        Installation {
                            doorway: doorway + 1,
                            from: minute(from),
                            until: (!(open && j + 1 == count)).then(|| minute(cursor)),
                        }
                    })
                    .collect();
                DpuLayout {
                    id: DpuId::new(DPUS[i]).expect("constant"),
                    installations,
                }
            })
            .collect()
    })
}

/// Spaces 1..=n, doorways 1..=m between distinct spaces (Outside included).
fn building() -> impl Strategy<Value = (Vec<Space>, Vec<Doorway>)> {
    (1i64..=4).prop_flat_map(|spaces| {
        prop::collection::vec((0..=spaces, 1..=spaces), 1..=4).prop_map(move |pairs| {
            let spaces_list = (1..=spaces)
                .map(|id| Space::new(id, format!("Space {id}")))
                .collect();
            let doorways = pairs
                .into_iter()
                .enumerate()
                .map(|(i, (a, offset))| Doorway {
                    id: i as i64 + 1,
                    name: format!("Doorway {}", i + 1),
                    exiting_to: a,
                    entering_to: (a + offset) % (spaces + 1),
                })
                .collect();
            (spaces_list, doorways)
        })
    })
}

fn events() -> impl Strategy<Value = Vec<Crossing>> {
    let event = (
        0..DPUS.len(),
        0i64..60,
        prop::bool::weighted(0.2),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.15),
    );
    prop::collection::vec(event, 0..40).prop_map(|raw| {
        let raw = raw.into_iter().map(|(dpu, m, half, inward, id, reboot)| {
            let ts = minute(m) + TimeDelta::milliseconds(if half { 500 } else { 0 });
            (dpu, ts, inward, id, reboot)
        });
        crossings(raw.collect())
    })
}

/// Up to 250 crossings crowded into two minutes at millisecond instants (a minute with
/// more than a few dozen keeps summaries per second in storage), or into one second.
fn crowded_events() -> impl Strategy<Value = Vec<Crossing>> {
    (0i64..30, any::<bool>()).prop_flat_map(|(start, one_second)| {
        let spread: i64 = if one_second { 1_000 } else { 120_000 };
        let event = (
            0..DPUS.len(),
            0..spread,
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.05),
        );
        prop::collection::vec(event, 0..250).prop_map(move |raw| {
            let raw = raw.into_iter().map(|(dpu, ms, inward, id, reboot)| {
                let ts = minute(start) + TimeDelta::milliseconds(ms);
                (dpu, ts, inward, id, reboot)
            });
            crossings(raw.collect())
        })
    })
}

/// Crossings of (DPU index, instant, inward, numbered, reboot before it), distinct by key.
fn crossings(raw: Vec<(usize, Timestamp, bool, bool, bool)>) -> Vec<Crossing> {
    let with_id: Vec<bool> = raw.iter().map(|e| e.3).collect();
    let reboots: Vec<bool> = raw.iter().map(|e| e.4).collect();
    let mut events: Vec<Crossing> = raw
        .into_iter()
        .map(|(dpu, ts, inward, _, _)| {
            let direction = if inward {
                Direction::In
            } else {
                Direction::Out
            };
            Crossing::new(
                DpuId::new(DPUS[dpu]).expect("constant"),
                ts,
                direction,
                None,
            )
        })
        .collect();
    events.sort_by_key(Crossing::key);
    events.dedup_by_key(|c| c.key());
    // Some crossings carry an event id from the DPU's counter (in key order, that is in
    // time order per DPU), which restarts when the DPU reboots and wraps around a small
    // pool: one id often comes with several crossings, as real firmware sends it.
    let mut counters: HashMap<DpuId, u64> = HashMap::new();
    for (i, event) in events.iter_mut().enumerate() {
        let counter = counters.entry(event.dpu.clone()).or_default();
        if reboots[i] {
            *counter = 0;
        }
        *counter = (*counter + 1) % ID_POOL;
        event.event_id = with_id[i].then_some(*counter);
    }
    events
}

pub fn scenario() -> impl Strategy<Value = Scenario> {
    scenario_from(events)
}

/// Like [`scenario`], with many crossings crowded into a minute or a second (`crowded_events`).
pub fn crowded_scenario() -> impl Strategy<Value = Scenario> {
    scenario_from(crowded_events)
}

fn scenario_from<S: Strategy<Value = Vec<Crossing>> + 'static>(
    events: fn() -> S,
) -> impl Strategy<Value = Scenario> {
    building()
        .prop_flat_map(move |(spaces, doorways)| {
            let n = doorways.len();
            (
                Just(spaces),
                Just(doorways),
                histories(n),
                prop::option::of(histories(n)),
                events(),
            )
        })
        .prop_flat_map(|(spaces, doorways, final_histories, interim, events)| {
            let layout = Layout {
                spaces,
                doorways,
                dpus: final_histories,
            };
            let interim = interim.map(|dpus| Layout {
                dpus,
                ..layout.clone()
            });
            let n = events.len();
            let messages: Vec<usize> = (0..n).collect();
            (
                Just(layout),
                Just(interim),
                Just(events),
                // A repeat of event i is `i`; `n + i` is the same crossing sent without its id
                // (firmware that numbers only some messages); `2n + i` is the same instant and
                // direction under another id, that is a second person seen with the first.
                prop::collection::vec(0..(3 * n).max(1), 0..=n),
                Just(messages),
                prop::collection::vec(1usize..8, 1..20),
                0..=n,
            )
        })
        .prop_flat_map(
            |(layout, interim, events, repeats, mut order, cuts, layout_at)| {
                if !events.is_empty() {
                    order.extend(repeats);
                }
                (
                    Just(layout),
                    Just(interim),
                    Just(events),
                    Just(order).prop_shuffle(),
                    Just(cuts),
                    Just(layout_at),
                )
            },
        )
        .prop_map(|(layout, interim, events, order, cuts, layout_at)| {
            let mut batches = Vec::new();
            let mut rest = &order[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (batch, tail) = rest.split_at((*cut).min(rest.len()));
                let n = events.len();
                let message = |i: usize| {
                    let mut crossing = events[i % n].clone();
                    crossing.event_id = match i / n {
                        0 => crossing.event_id,
                        1 => None,
                        _ => Some((i as u64 + 3) % ID_POOL),
                    };
                    crossing
                };
                batches.push(batch.iter().map(|&i| message(i)).collect::<Vec<_>>());
                rest = tail;
            }
            let layout_before_batch = layout_at.min(batches.len());
            Scenario {
                layout,
                interim,
                events,
                batches,
                layout_before_batch,
            }
        })
}

/// Like [`scenario`], with daily resets on some spaces: in UTC, Paris or Kolkata, at a local
/// time that falls within (or just after) the hour the events span.
pub fn scenario_with_resets() -> impl Strategy<Value = Scenario> {
    scenario()
        .prop_flat_map(|scenario| {
            let spaces = scenario.layout.spaces.len();
            (
                Just(scenario),
                prop::collection::vec(prop::option::of((0usize..3, 0i64..70)), spaces),
            )
        })
        .prop_map(|(mut scenario, resets)| {
            let zones = [
                chrono_tz::UTC,
                chrono_tz::Europe::Paris,
                chrono_tz::Asia::Kolkata,
            ];
            let set = |layout: &mut Layout| {
                for (space, reset) in layout.spaces.iter_mut().zip(&resets) {
                    if let Some((zone, m)) = reset {
                        let tz = zones[*zone];
                        space.time_zone = Some(tz);
                        space.daily_reset = Some(minute(*m).with_timezone(&tz).time());
                    }
                }
            };
            set(&mut scenario.layout);
            if let Some(interim) = &mut scenario.interim {
                set(interim);
            }
            scenario
        })
}

/// A tall building for tests and benchmarks of many spaces: `floors` floors (ids 1000, 1001,
/// …) of `rooms` rooms each (ids 10000 + 100 × floor + room, at most 100 a floor), every room
/// with `capacity`. Spaces only: no doorway, no DPU.
pub fn floors_of_rooms(floors: i64, rooms: i64, capacity: u32) -> Layout {
    assert!(rooms <= 100, "room ids leave room for 100 a floor");
    let mut spaces = Vec::new();
    for floor in 0..floors {
        let floor_id = 1000 + floor;
        spaces.push(Space::new(floor_id, format!("Floor {floor}")));
        for room in 0..rooms {
            let mut space = Space::new(10_000 + floor * 100 + room, format!("Room {floor}.{room}"));
            space.parent = Some(floor_id);
            space.capacity = Some(capacity);
            spaces.push(space);
        }
    }
    Layout {
        spaces,
        ..Layout::default()
    }
}
