//! A week in a small office as its four DPUs would have uploaded it: the tour's data, made by
//! the project itself (the reference recording is third-party data that cannot ship with it).
//! Deterministic for a start date and a seed.
//!
//! People arrive through the main entrance in the morning, go on into the open office, leave
//! it for meetings and lunch, and go home in the evening; visitors come for meetings; a couple
//! of people work on Saturday. Like real sensors, the DPUs miss a crossing now and then (the
//! daily reset at 03:00 absorbs the drift), the café's DPU loses its network for a night and
//! uploads that evening late, and the office door's DPU sends some rows twice after a
//! reconnect. The rows are in upload order, so a replay delivers them late and repeated, as
//! the network did.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Weekday};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::{Crossing, Direction, Doorway, DpuId, Layout, Space, Timestamp, OUTSIDE};

/// The building's spaces.
pub const LOBBY: i64 = 1;
pub const OFFICE: i64 = 2;
pub const MEETING_ROOM: i64 = 3;
pub const CAFE: i64 = 4;
const BUILDING: i64 = 10;
/// How many people work there.
const STAFF: usize = 35;
/// The share of crossings a DPU misses.
const MISSED: f64 = 0.004;

/// The DPU over each doorway (doorway `n` is watched by DPU `10n`, `101` … `104`).
const DPUS: [(&str, i64, &str, i64); 4] = [
    ("101", OUTSIDE, "Main entrance", LOBBY),
    ("102", LOBBY, "Office door", OFFICE),
    ("103", LOBBY, "Meeting room door", MEETING_ROOM),
    ("104", LOBBY, "Café door", CAFE),
];

/// The week: the building and its DPUs' rows in upload order.
pub struct Week {
    pub layout: Layout,
    /// The rows as uploaded: late ones where they arrived, repeats included.
    pub rows: Vec<Crossing>,
    /// Rows uploaded again (already in `rows` once before).
    pub repeats: usize,
    /// Rows uploaded after rows of the same DPU that happened later.
    pub late: usize,
}

/// The office's time zone.
pub fn time_zone() -> Tz {
    chrono_tz::Europe::Paris
}

/// The building: a lobby behind the main entrance, and the office, the meeting room and the
/// café off the lobby, each with a capacity and a daily reset at 03:00, in Paris time.
pub fn office_layout(installed: Timestamp) -> Layout {
    let mut building = Space::new(BUILDING, "Office building");
    building.time_zone = Some(time_zone());
    let room = |id, name: &str, capacity| {
        let mut space = Space::new(id, name);
        space.parent = Some(BUILDING);
        space.capacity = Some(capacity);
        space.daily_reset = NaiveTime::from_hms_opt(3, 0, 0);
        space
    };
    let spaces = vec![
        building,
        room(LOBBY, "Lobby", 30),
        room(OFFICE, "Open office", 40),
        room(MEETING_ROOM, "Meeting room", 10),
        room(CAFE, "Café", 25),
    ];
    let doorways = DPUS
        .iter()
        .zip(1..)
        .map(|(&(_, from, name, into), id)| Doorway {
            id,
            name: name.into(),
            exiting_to: from,
            entering_to: into,
        })
        .collect();
    let dpus = DPUS
        .iter()
        .zip(1..)
        .map(|(&(dpu, ..), doorway)| {
            DpuLayout::hanging_over(DpuId::new(dpu).expect("a valid DPU id"), doorway, installed)
        })
        .collect();
    Layout {
        spaces,
        doorways,
        dpus,
    }
}

/// One person walking through one doorway: `+1` into the space the DPU looks into.
struct Step {
    at: NaiveDateTime,
    dpu: usize,
    direction: Direction,
}

/// A walk from one space to another through a doorway (by index in [`DPUS`]).
fn through(at: NaiveDateTime, dpu: usize, inward: bool) -> Step {
    let direction = if inward {
        Direction::In
    } else {
        Direction::Out
    };
    Step { at, dpu, direction }
}

/// A random time of day between `from` and `to` (hours, local).
fn time_between(rng: &mut StdRng, day: NaiveDate, from: f64, to: f64) -> NaiveDateTime {
    let seconds = rng.random_range(from * 3600.0..to * 3600.0);
    let millis = (seconds * 1000.0) as i64;
    day.and_time(NaiveTime::MIN) + TimeDelta::milliseconds(millis)
}

/// A few seconds to a minute and a half: crossing a lobby.
fn walk(rng: &mut StdRng) -> TimeDelta {
    TimeDelta::milliseconds(rng.random_range(15_000..90_000))
}

/// A stay in room `dpu` (by index) from the office: out of the office, in, out, back.
fn visit_from_office(
    rng: &mut StdRng,
    steps: &mut Vec<Step>,
    start: NaiveDateTime,
    minutes: i64,
    dpu: usize,
) {
    let arrive = start + walk(rng);
    let leave = arrive + TimeDelta::minutes(minutes);
    steps.push(through(start, 1, false));
    steps.push(through(arrive, dpu, true));
    steps.push(through(leave, dpu, false));
    steps.push(through(leave + walk(rng), 1, true));
}

/// One working day's crossings for the staff and the day's visitors.
fn working_day(rng: &mut StdRng, day: NaiveDate, steps: &mut Vec<Step>) {
    for _ in 0..STAFF {
        if !rng.random_bool(0.85) {
            continue;
        }
        let arrive = time_between(rng, day, 7.5, 10.0);
        steps.push(through(arrive, 0, true));
        steps.push(through(arrive + walk(rng), 1, true));
        if rng.random_bool(0.4) {
            let start = time_between(rng, day, 10.25, 11.25);
            let minutes = rng.random_range(20..45);
            visit_from_office(rng, steps, start, minutes, 2);
        }
        if rng.random_bool(0.6) {
            let start = time_between(rng, day, 12.0, 13.0);
            let minutes = rng.random_range(20..50);
            visit_from_office(rng, steps, start, minutes, 3);
        }
        if rng.random_bool(0.3) {
            let start = time_between(rng, day, 14.0, 15.5);
            let minutes = rng.random_range(25..55);
            visit_from_office(rng, steps, start, minutes, 2);
        }
        let leave = time_between(rng, day, 16.5, 19.0);
        steps.push(through(leave, 1, false));
        steps.push(through(leave + walk(rng), 0, false));
    }
    for _ in 0..rng.random_range(0..6) {
        let arrive = time_between(rng, day, 9.0, 15.0);
        let meeting = arrive + walk(rng);
        let leave = meeting + TimeDelta::minutes(rng.random_range(30..90));
        steps.push(through(arrive, 0, true));
        steps.push(through(meeting, 2, true));
        steps.push(through(leave, 2, false));
        steps.push(through(leave + walk(rng), 0, false));
    }
}

/// Two people working a Saturday morning.
fn saturday(rng: &mut StdRng, day: NaiveDate, steps: &mut Vec<Step>) {
    for _ in 0..2 {
        let arrive = time_between(rng, day, 9.0, 10.0);
        let leave = time_between(rng, day, 12.0, 13.0);
        steps.push(through(arrive, 0, true));
        steps.push(through(arrive + walk(rng), 1, true));
        steps.push(through(leave, 1, false));
        steps.push(through(leave + walk(rng), 0, false));
    }
}

/// The week from Monday `monday` (any day is moved back to its Monday), for `seed`.
pub fn office_week(monday: NaiveDate, seed: u64) -> Week {
    let monday = monday - TimeDelta::days(i64::from(monday.weekday().num_days_from_monday()));
    let tz = time_zone();
    let local = |t: NaiveDateTime| roomer_occupancy::history::local_instant(tz, t);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    for offset in 0..7 {
        let day = monday + TimeDelta::days(offset);
        match day.weekday() {
            Weekday::Sat => saturday(&mut rng, day, &mut steps),
            Weekday::Sun => {}
            _ => working_day(&mut rng, day, &mut steps),
        }
    }
    steps.sort_by_key(|s| (s.at, s.dpu));
    let ids: Vec<DpuId> = DPUS
        .iter()
        .map(|(id, ..)| DpuId::new(*id).expect("a valid DPU id"))
        .collect();
    // What the sensors recorded: every crossing but the few they missed.
    let recorded: Vec<(usize, Crossing)> = steps
        .into_iter()
        .filter(|_| !rng.random_bool(MISSED))
        .map(|s| {
            let crossing = Crossing::new(ids[s.dpu].clone(), local(s.at), s.direction, None);
            (s.dpu, crossing)
        })
        .collect();
    upload(recorded, monday, &mut rng)
}

/// The rows in the order they reached the server: the café's DPU (index 3) is offline from
/// Wednesday 11:00 to Thursday 08:00 and uploads what it recorded meanwhile when it is back;
/// the office door's DPU (index 1) uploads its last ten rows again after a reconnect on
/// Tuesday at 15:00.
fn upload(recorded: Vec<(usize, Crossing)>, monday: NaiveDate, rng: &mut StdRng) -> Week {
    let tz = time_zone();
    let at = |days: i64, hour: u32| {
        let t = (monday + TimeDelta::days(days))
            .and_hms_opt(hour, 0, 0)
            .unwrap();
        roomer_occupancy::history::local_instant(tz, t)
    };
    let (offline_from, back) = (at(2, 11), at(3, 8));
    let reconnect = at(1, 15);
    let mut rows = Vec::with_capacity(recorded.len() + 16);
    let mut held = Vec::new();
    let mut repeats = 0;
    let mut late = 0;
    let mut office_sent: Vec<Crossing> = Vec::new();
    let mut reconnected = false;
    for (dpu, crossing) in recorded {
        if !held.is_empty() && crossing.ts >= back {
            late += held.len();
            rows.append(&mut held);
        }
        if dpu == 1 && !reconnected && crossing.ts >= reconnect {
            reconnected = true;
            let again: Vec<Crossing> = office_sent.iter().rev().take(10).rev().cloned().collect();
            repeats += again.len();
            rows.extend(again);
        }
        if dpu == 3 && crossing.ts >= offline_from && crossing.ts < back {
            held.push(crossing);
            continue;
        }
        if dpu == 1 {
            office_sent.push(crossing.clone());
        }
        // Now and then a PUBACK is lost and a row is sent twice in a row.
        if rng.random_bool(0.005) {
            repeats += 1;
            rows.push(crossing.clone());
        }
        rows.push(crossing);
    }
    late += held.len();
    rows.append(&mut held);
    Week {
        layout: office_layout(at(0, 0) - TimeDelta::days(7)),
        rows,
        repeats,
        late,
    }
}

/// What [`write_week`] wrote, said in a sentence.
pub struct Written {
    pub layout: std::path::PathBuf,
    pub csv: std::path::PathBuf,
    pub week: Week,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let week = &self.week;
        write!(
            f,
            "wrote {}: {} spaces, {} doorways, {} DPUs\n\
             wrote {}: {} rows ({} uploaded late, {} repeats)",
            self.layout.display(),
            week.layout.spaces.len(),
            week.layout.doorways.len(),
            week.layout.dpus.len(),
            self.csv.display(),
            week.rows.len(),
            week.late,
            week.repeats
        )
    }
}

/// Writes the week of [`office_week`] into `dir`: `building.toml` and `crossings.csv`.
pub fn write_week(
    dir: &std::path::Path,
    monday: NaiveDate,
    seed: u64,
) -> Result<Written, crate::SimError> {
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| crate::SimError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let week = office_week(monday, seed);
    let layout = dir.join("building.toml");
    let text = week.layout.to_toml().map_err(|e| crate::SimError::Write {
        path: layout.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let header = "# A small office, made by `roomer simulate week`: a lobby behind the main \
                  entrance,\n# and the open office, the meeting room and the café off the \
                  lobby. Apply it with\n#   roomer layout apply building.toml\n\n";
    std::fs::write(&layout, format!("{header}{text}")).map_err(io(&layout))?;
    let csv = dir.join("crossings.csv");
    crate::write_csv(&csv, &week.rows)?;
    Ok(Written { layout, csv, week })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn week() -> Week {
        office_week(NaiveDate::from_ymd_opt(2026, 1, 7).unwrap(), 1)
    }

    #[test]
    fn the_same_seed_makes_the_same_week() {
        let (a, b) = (week(), week());
        assert_eq!(a.rows, b.rows);
        assert_ne!(
            a.rows,
            office_week(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), 2).rows
        );
    }

    #[test]
    fn rows_come_late_and_twice_as_uploads_do() {
        let week = week();
        let distinct: BTreeSet<_> = week.rows.iter().map(Crossing::key).collect();
        assert_eq!(week.rows.len() - distinct.len(), week.repeats);
        assert!(week.repeats >= 10, "{}", week.repeats);
        assert!(week.late > 10, "{}", week.late);
        // Late: some row comes after a row of another DPU that happened later.
        let out_of_order = week.rows.windows(2).filter(|w| w[1].ts < w[0].ts).count();
        assert!(out_of_order > 0);
        // Every DPU of the layout uploads, and nothing else does.
        let dpus: BTreeSet<&str> = week.rows.iter().map(|c| c.dpu.as_str()).collect();
        assert_eq!(dpus, ["101", "102", "103", "104"].into_iter().collect());
        week.layout.validate().unwrap();
    }

    #[test]
    fn the_files_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let written =
            write_week(dir.path(), NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), 1).unwrap();
        let layout = std::fs::read_to_string(&written.layout).unwrap();
        assert_eq!(Layout::from_toml(&layout).unwrap(), written.week.layout);
        assert_eq!(crate::read_csv(&written.csv).unwrap(), written.week.rows);
        assert!(written.to_string().contains("uploaded late"));
    }

    #[test]
    fn the_office_is_busy_on_weekdays_and_quiet_at_the_weekend() {
        let week = week();
        let tz = time_zone();
        let mut per_day: HashMap<Weekday, usize> = HashMap::new();
        for row in &week.rows {
            *per_day
                .entry(row.ts.with_timezone(&tz).weekday())
                .or_default() += 1;
        }
        assert!(per_day[&Weekday::Mon] > 150, "{per_day:?}");
        assert!(per_day[&Weekday::Sat] < 20, "{per_day:?}");
        assert!(!per_day.contains_key(&Weekday::Sun), "{per_day:?}");
    }
}
