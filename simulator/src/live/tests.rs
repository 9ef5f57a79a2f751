use super::*;
use roomer_occupancy::payload::{parse_message, Validation};

fn options(dpus: usize, rate: f64, duration_ms: u64) -> LiveOptions {
    LiveOptions {
        dpus,
        rate,
        duration: Duration::from_millis(duration_ms),
        seed: 1,
    }
}

fn start_utc() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// Every message of DPU `index`, as if the whole duration had already passed.
fn drain(index: usize, live: &LiveOptions, batch: usize) -> Vec<Message> {
    let start = Instant::now();
    let schedule = LiveSchedule::new(live);
    let end = start + live.duration;
    let mut dpu = LiveDpu::new(index, schedule, batch, live.seed, (start, end, start_utc()));
    let mut messages = Vec::new();
    loop {
        match dpu.next(end) {
            Next::Ready(message) => messages.push(message),
            Next::At(at) => panic!("nothing should be due after the end, got {at:?}"),
            Next::Done => return messages,
        }
    }
}

fn crossings(index: usize, messages: &[Message]) -> Vec<Crossing> {
    let validation = Validation {
        now: start_utc() + chrono::TimeDelta::days(1),
        max_future: chrono::TimeDelta::zero(),
        oldest: None,
    };
    let dpu = fleet_dpu_id(index + 1);
    messages
        .iter()
        .flat_map(|m| {
            let parsed = parse_message(&dpu, &m.payload, &validation);
            assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
            assert_eq!(parsed.crossings.len(), m.events);
            parsed.crossings
        })
        .collect()
}

#[test]
fn the_fleet_crosses_exactly_every_one_over_rate_seconds() {
    let live = options(7, 20.0, 3_000);
    let schedule = LiveSchedule::new(&live);
    assert_eq!(schedule.total(), 60);
    let mut offsets: Vec<Duration> = (0..7)
        .flat_map(|i| (0..schedule.crossings_of(i)).map(move |k| schedule.offset(i, k)))
        .collect();
    assert_eq!(offsets.len(), 60, "the DPUs share the total");
    offsets.sort();
    let expected: Vec<Duration> = (0..60).map(|j| Duration::from_millis(50 * j)).collect();
    assert_eq!(offsets, expected);
}

#[test]
fn each_dpu_crosses_every_dpus_over_rate_seconds_with_its_own_phase() {
    let schedule = LiveSchedule::new(&options(4, 10.0, 1_000));
    let counts: Vec<u64> = (0..4).map(|i| schedule.crossings_of(i)).collect();
    assert_eq!(counts, [3, 3, 2, 2]);
    let ms = Duration::from_millis;
    assert_eq!(schedule.offset(0, 0), ms(0));
    assert_eq!(schedule.offset(1, 0), ms(100), "phase i / rate");
    assert_eq!(schedule.offset(1, 1), ms(500), "period dpus / rate");
    assert_eq!(schedule.offset(3, 1), ms(700));
    // More DPUs than crossings: the last ones never cross.
    let sparse = LiveSchedule::new(&options(10, 2.0, 2_000));
    assert_eq!(sparse.crossings_of(3), 1);
    assert_eq!(sparse.crossings_of(4), 0);
}

#[test]
fn a_rate_times_duration_that_is_whole_is_not_rounded_up() {
    assert_eq!(LiveSchedule::new(&options(1, 0.3, 10_000)).total(), 3);
    assert_eq!(LiveSchedule::new(&options(3, 400.0, 5_000)).total(), 2_000);
    assert_eq!(LiveSchedule::new(&options(1, 1.0, 2_500)).total(), 3);
}

#[test]
fn a_dpu_crosses_on_schedule_with_ids_and_never_below_zero() {
    let live = options(5, 50.0, 4_000);
    let messages = drain(2, &live, 1);
    assert_eq!(messages.len(), 40);
    assert!(messages.iter().all(|m| m.payload.starts_with(b"{")));
    let crossings = crossings(2, &messages);
    let mut inside = 0;
    for (k, crossing) in crossings.iter().enumerate() {
        assert_eq!(crossing.event_id, Some(k as u64 + 1));
        let expected = start_utc() + chrono::TimeDelta::milliseconds(40 + 100 * k as i64);
        assert_eq!(crossing.ts, expected);
        inside += crossing.direction.as_i64();
        assert!(inside >= 0, "more out than in at crossing {k}");
    }
    assert!(crossings.iter().any(|c| c.direction == Direction::Out));
}

#[test]
fn directions_depend_on_the_seed_and_the_dpu_only() {
    let directions = |index, seed| {
        let live = LiveOptions {
            seed,
            ..options(3, 300.0, 1_000)
        };
        let messages = drain(index, &live, 1);
        crossings(index, &messages)
            .iter()
            .map(|c| c.direction)
            .collect::<Vec<_>>()
    };
    assert_eq!(directions(1, 7), directions(1, 7));
    assert_ne!(directions(1, 7), directions(1, 8));
    assert_ne!(directions(0, 7), directions(1, 7));
}

#[test]
fn a_batch_holds_the_latest_crossings_and_is_due_with_the_last_one() {
    let live = options(2, 20.0, 500); // 5 crossings each, every 100 ms
    let messages = drain(1, &live, 2);
    let sizes: Vec<usize> = messages.iter().map(|m| m.events).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert!(messages.iter().all(|m| m.payload.starts_with(b"[")));
    let ids: Vec<u64> = crossings(1, &messages)
        .iter()
        .map(|c| c.event_id.unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);

    let start = Instant::now();
    let schedule = LiveSchedule::new(&live);
    let end = start + live.duration;
    let mut dpu = LiveDpu::new(1, schedule, 2, 1, (start, end, start_utc()));
    let second = start + Duration::from_millis(150); // DPU 1's crossing 1
    assert!(matches!(dpu.next(start), Next::At(at) if at == second));
    assert!(matches!(dpu.next(second), Next::Ready(m) if m.due == Some(second)));
}

#[test]
fn after_its_last_crossing_a_dpu_stays_until_the_end() {
    let live = options(2, 4.0, 1_000); // DPU 0 crosses at 0 and 500 ms
    let start = Instant::now();
    let end = start + live.duration;
    let schedule = LiveSchedule::new(&live);
    let mut dpu = LiveDpu::new(0, schedule, 1, 1, (start, end, start_utc()));
    let last = start + Duration::from_millis(500);
    assert!(matches!(dpu.next(last), Next::Ready(_)));
    assert!(matches!(dpu.next(last), Next::Ready(_)));
    assert!(matches!(dpu.next(last), Next::At(at) if at == end));
    assert!(matches!(dpu.next(end), Next::Done));
}

#[test]
fn nonsense_live_options_are_refused() {
    assert!(options(100, 400.0, 5_000).check().is_ok());
    for bad in [
        options(0, 10.0, 1_000),
        options(10, 0.0, 1_000),
        options(10, f64::NAN, 1_000),
        options(10, f64::INFINITY, 1_000),
        options(10, 10.0, 0),
        options(2, 2_001.0, 1_000),
    ] {
        assert!(bad.check().is_err(), "{bad:?} was accepted");
    }
    assert!(options(2, 2_000.0, 1_000).check().is_ok());
}

#[test]
fn the_largest_batch_fits_the_payload_limit() {
    let max = max_batch();
    assert!(max > 10_000, "{max}");
    let ts: Timestamp = "2999-12-31T23:59:59.999999Z".parse().unwrap();
    let widest = Crossing::new(fleet_dpu_id(99_999), ts, Direction::Out, Some(u64::MAX));
    assert!(batch_payload(&vec![widest; max]).len() <= MAX_PAYLOAD_BYTES);
}
