//! A synthetic building and its traffic, for load tests: deterministic for a seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::OUTSIDE;
use roomer_occupancy::{Crossing, Direction, Doorway, DpuId, Layout, Space, Timestamp};

/// The id of the fleet's `n`-th DPU, counting from 1: `sim-00001`, `sim-00002`, …
pub fn fleet_dpu_id(n: usize) -> DpuId {
    DpuId::new(format!("sim-{n:05}")).expect("sim-NNNNN is a valid DPU id")
}

/// `dpus` DPUs, each over a doorway of its own from Outside into one of `rooms` rooms
/// (spaces `1..=rooms`), installed from `start` on. The `i`-th DPU (from 0) hangs over
/// doorway `i + 1`, which leads into room `i % rooms + 1`, so rooms share DPUs evenly.
///
/// Panics if there are DPUs but no rooms.
pub fn fleet_layout(dpus: usize, rooms: usize, start: Timestamp) -> Layout {
    assert!(
        rooms > 0 || dpus == 0,
        "a fleet of DPUs needs at least one room"
    );
    let spaces = (1..=rooms)
        .map(|room| Space::new(room as i64, format!("Room {room}")))
        .collect();
    let doorways = (0..dpus)
        .map(|i| Doorway {
            id: i as i64 + 1,
            name: format!("Doorway {}", i + 1),
            exiting_to: OUTSIDE,
            entering_to: room_of(i, rooms),
        })
        .collect();
    let dpus = (0..dpus)
        .map(|i| DpuLayout::hanging_over(fleet_dpu_id(i + 1), i as i64 + 1, start))
        .collect();
    Layout {
        spaces,
        doorways,
        dpus,
    }
}

fn room_of(i: usize, rooms: usize) -> i64 {
    (i % rooms) as i64 + 1
}

/// `events_per_dpu` crossings for each of the fleet's `dpus` DPUs, grouped per DPU like the
/// reference CSV. Each DPU's crossings are after `start`, in increasing time, 1 to 120 s apart
/// (millisecond resolution), numbered with event ids 1, 2, … Directions are a fair coin,
/// except that nobody leaves through a doorway more often than people came in through it, so
/// rooms fill and empty without their counts ever needing a clamp.
pub fn fleet_events(
    dpus: usize,
    events_per_dpu: usize,
    start: Timestamp,
    seed: u64,
) -> Vec<Crossing> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::with_capacity(dpus * events_per_dpu);
    for i in 0..dpus {
        let dpu = fleet_dpu_id(i + 1);
        let mut ts = start;
        let mut doorway = Footfall::default();
        for k in 0..events_per_dpu {
            ts += chrono::TimeDelta::milliseconds(rng.random_range(1_000..=120_000));
            let direction = doorway.next(&mut rng);
            events.push(Crossing::new(
                dpu.clone(),
                ts,
                direction,
                Some(k as u64 + 1),
            ));
        }
    }
    events
}

/// The directions through one doorway: a fair coin, except that nobody leaves more often
/// than people came in, so rooms fill and empty without their counts needing a clamp. Shared
/// by [`fleet_events`] and the live fleet so that both make the same kind of traffic.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Footfall {
    inside: u64,
}

impl Footfall {
    pub(crate) fn next(&mut self, rng: &mut impl Rng) -> Direction {
        // No coin when the room is empty: fleet_events' sequence depends on it.
        if self.inside == 0 || rng.random_bool(0.5) {
            self.inside += 1;
            Direction::In
        } else {
            self.inside -= 1;
            Direction::Out
        }
    }
}
