//! b. Late-event cost vs history, and c. `count_at` latency.

use super::*;

/// The shape of a one-DPU history.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// +1, +1, -1 repeated: the room never empties (and no departure is ever clamped).
    NeverEmpty,
    /// +1, -1, -1 repeated: the room empties every third crossing (the second departure
    /// leaves an empty room, so the clamp absorbs it).
    EmptiesOften,
}

/// Where the late crossing lands.
#[derive(Clone, Copy)]
pub(crate) enum Position {
    /// Before every stored crossing of a `NeverEmpty` history.
    AtStart,
    /// Between an arrival and the departure that empties the room, near the start of an
    /// `EmptiesOften` history.
    BeforeEmpty,
    /// Ten crossings before the end of a `NeverEmpty` history.
    NearEnd,
}

impl Position {
    const ALL: [Position; 3] = [Position::AtStart, Position::BeforeEmpty, Position::NearEnd];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Position::AtStart => "at start, never empty",
            Position::BeforeEmpty => "before an empty moment",
            Position::NearEnd => "10 before the end",
        }
    }

    pub(crate) fn shape(self) -> Shape {
        match self {
            Position::BeforeEmpty => Shape::EmptiesOften,
            Position::AtStart | Position::NearEnd => Shape::NeverEmpty,
        }
    }

    /// The `sample`-th late crossing (each one distinct, all an arrival) for a history of `h`.
    pub(crate) fn late(self, h: usize, sample: usize) -> Crossing {
        let start = base_time();
        let ts = match self {
            // Before the first stored crossing (which is at start + 1 s), after the install.
            Position::AtStart => start + TimeDelta::milliseconds(1 + sample as i64),
            // Crossing i is at start + (i + 1) s; in EmptiesOften, crossing 3j is the arrival
            // and 3j + 1 the departure that empties the room.
            Position::BeforeEmpty => start + second(3 * sample) + TimeDelta::milliseconds(500),
            Position::NearEnd => start + second(h - 10 + sample) + TimeDelta::milliseconds(500),
        };
        Crossing::new(late_dpu(), ts, Direction::In, None)
    }
}

pub(crate) fn second(i: usize) -> TimeDelta {
    TimeDelta::seconds(i as i64 + 1)
}

pub(crate) fn late_dpu() -> DpuId {
    DpuId::new("bench-dpu").expect("valid id")
}

pub(crate) fn one_room_layout() -> Layout {
    Layout {
        spaces: vec![Space::new(ROOM, "Room")],
        doorways: vec![one_room_doorway()],
        dpus: vec![DpuLayout {
            id: late_dpu(),
            installations: vec![Installation {
                doorway: 1,
                from: base_time(),
                until: None,
            }],
        }],
    }
}

pub(crate) fn one_room_doorway() -> Doorway {
    Doorway {
        id: 1,
        name: "Front door".into(),
        exiting_to: OUTSIDE,
        entering_to: ROOM,
    }
}

/// `h` crossings of one DPU, one a second, with event ids like a real DPU's.
pub(crate) fn history(shape: Shape, h: usize) -> Vec<Crossing> {
    let pattern = match shape {
        Shape::NeverEmpty => [Direction::In, Direction::In, Direction::Out],
        Shape::EmptiesOften => [Direction::In, Direction::Out, Direction::Out],
    };
    (0..h)
        .map(|i| {
            Crossing::new(
                late_dpu(),
                base_time() + second(i),
                pattern[i % 3],
                Some(i as u64 + 1),
            )
        })
        .collect()
}

/// How many entries and summaries a late crossing reads in the room and in Outside when it
/// lands on `history`: `TieredSeries::apply` is the in-memory twin of every backend's.
pub(crate) fn late_reads(history: &[Crossing], late: &Crossing) -> (usize, usize) {
    let doorway = one_room_doorway();
    let mut series: BTreeMap<SpaceId, TieredSeries> = BTreeMap::new();
    let mut apply = |crossings: &[Crossing]| {
        let mut changes: BTreeMap<SpaceId, roomer_occupancy::series::SpaceChange> = BTreeMap::new();
        for crossing in crossings {
            for (space, key) in roomer_occupancy::plan::entries(crossing, 0, &doorway) {
                changes.entry(space).or_default().inserts.push(key);
            }
        }
        changes
            .into_iter()
            .map(|(space, change)| {
                (
                    space,
                    series
                        .entry(space)
                        .or_insert_with(|| TieredSeries::new(space, None))
                        .apply(&change),
                )
            })
            .collect::<BTreeMap<SpaceId, usize>>()
    };
    apply(history);
    let visited = apply(std::slice::from_ref(late));
    (visited[&ROOM], visited[&OUTSIDE])
}

pub(crate) async fn late_events_and_lookups(backends: &[Backend], late: bool, lookups: bool) {
    if late {
        println!(
            "\nb. Late-event cost vs history: one DPU over Outside->Room, H crossings stored \
             (batches of {BATCH}), then ONE late arrival; median of {LATE_SAMPLES}"
        );
        println!(
            "   entries and summaries a late crossing reads (room + Outside), the same in every backend:"
        );
        for h in histories() {
            let cells: Vec<String> = Position::ALL
                .iter()
                .map(|p| {
                    let (room, outside) = late_reads(&history(p.shape(), h), &p.late(h, 0));
                    format!("{}: {room} + {outside}", p.label())
                })
                .collect();
            println!("   H={h:<6} {}", cells.join(" | "));
        }
        println!(
            "{:<10} {:>7} {:>24} {:>24} {:>20}",
            "backend",
            "H",
            Position::AtStart.label(),
            Position::BeforeEmpty.label(),
            Position::NearEnd.label()
        );
    }
    // [backend][h] -> per-position medians (seconds) and lookup stats.
    let mut late_rows: Vec<(Backend, usize, Vec<f64>)> = Vec::new();
    let mut lookup_rows: Vec<(Backend, usize, f64, f64)> = Vec::new();
    for &backend in backends {
        for h in histories() {
            let mut never_empty = Subject::open(backend).await;
            never_empty.apply_layout(&one_room_layout()).await;
            for batch in history(Shape::NeverEmpty, h).chunks(BATCH) {
                never_empty.ingest(batch).await;
            }
            if lookups {
                let (p50, p99) = count_at_latency(&never_empty, h).await;
                lookup_rows.push((backend, h, p50, p99));
            }
            if late {
                let mut emptying = Subject::open(backend).await;
                emptying.apply_layout(&one_room_layout()).await;
                for batch in history(Shape::EmptiesOften, h).chunks(BATCH) {
                    emptying.ingest(batch).await;
                }
                let mut medians = Vec::new();
                for position in Position::ALL {
                    let subject = match position.shape() {
                        Shape::NeverEmpty => &mut never_empty,
                        Shape::EmptiesOften => &mut emptying,
                    };
                    let mut samples = Vec::new();
                    for sample in 0..LATE_SAMPLES {
                        let crossing = position.late(h, sample);
                        let began = Instant::now();
                        subject.ingest(std::slice::from_ref(&crossing)).await;
                        samples.push(began.elapsed().as_secs_f64());
                    }
                    medians.push(median(samples));
                }
                println!(
                    "{:<10} {:>7} {:>24} {:>24} {:>20}",
                    backend.name(),
                    h,
                    time(medians[0]),
                    time(medians[1]),
                    time(medians[2])
                );
                late_rows.push((backend, h, medians));
                emptying.close().await;
            }
            never_empty.close().await;
        }
    }
    if late {
        let [small, large] = histories();
        println!(
            "   cost ratio H={large} / H={small} (history x{}):",
            large / small
        );
        for &backend in backends {
            let row = |h: usize| {
                late_rows
                    .iter()
                    .find(|(b, hh, _)| *b == backend && *hh == h)
                    .map(|(_, _, m)| m.clone())
                    .expect("measured")
            };
            let (a, b) = (row(small), row(large));
            println!(
                "{:<10} {:>7} {:>24} {:>24} {:>20}",
                backend.name(),
                "",
                format!("x{:.1}", b[0] / a[0]),
                format!("x{:.1}", b[1] / a[1]),
                format!("x{:.1}", b[2] / a[2])
            );
        }
    }
    if lookups {
        let [small, large] = histories();
        println!(
            "\nc. count_at latency: {LOOKUPS} lookups of the room at random instants, one at a time"
        );
        println!(
            "{:<10} {:>14} {:>14} {:>14} {:>14} {:>16}",
            "backend",
            format!("p50 H={small}"),
            format!("p99 H={small}"),
            format!("p50 H={large}"),
            format!("p99 H={large}"),
            "p50 ratio"
        );
        for &backend in backends {
            let stats = |h: usize| {
                lookup_rows
                    .iter()
                    .find(|(b, hh, _, _)| *b == backend && *hh == h)
                    .map(|&(_, _, p50, p99)| (p50, p99))
                    .expect("measured")
            };
            let (a, b) = (stats(small), stats(large));
            println!(
                "{:<10} {:>14} {:>14} {:>14} {:>14} {:>16}",
                backend.name(),
                time(a.0),
                time(a.1),
                time(b.0),
                time(b.1),
                format!("{:.2}", b.0 / a.0)
            );
        }
    }
}

/// Median and p99 (seconds) of `LOOKUPS` lookups at random instants within the history.
pub(crate) async fn count_at_latency(subject: &Subject, h: usize) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(SEED ^ h as u64);
    let span_ms = (h as i64 + 1) * 1_000;
    let at = |rng: &mut StdRng| base_time() + TimeDelta::milliseconds(rng.random_range(0..span_ms));
    for _ in 0..20 {
        subject.count_at(ROOM, at(&mut rng)).await; // warm up
    }
    let mut samples = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let t = at(&mut rng);
        let began = Instant::now();
        let count = subject.count_at(ROOM, t).await;
        samples.push(began.elapsed().as_secs_f64());
        assert!(count >= 0);
    }
    samples.sort_by(f64::total_cmp);
    (median(samples.clone()), percentile(&samples, 0.99))
}
