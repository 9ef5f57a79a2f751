//! The daily reset: at a local time of day a space's count returns to 0, absorbing the drift
//! of sensors that miss a crossing now and then.
//!
//! The reset at instant `r` comes before any crossing at `r`: a count at `t` is 0 when a
//! reset lies after the space's last crossing at or before `t` (`last < r <= t`). On a
//! daylight-saving day a reset time that does not exist (02:30 on a spring-forward night)
//! happens when the clock jumps over it; one that exists twice happens the first time.

use crate::history::local_instant;
use crate::layout::effective_time_zone;
use crate::model::{Space, SpaceId, Timestamp};
use chrono::{Duration, NaiveTime};
use chrono_tz::Tz;

/// A space's daily reset: `at` local time in `tz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyReset {
    pub at: NaiveTime,
    pub tz: Tz,
}

impl DailyReset {
    /// The rule of `space` among `spaces` (its own reset time, in its effective time zone).
    pub fn of(space: SpaceId, spaces: &[Space]) -> Option<Self> {
        let at = spaces.iter().find(|s| s.id == space)?.daily_reset?;
        Some(Self {
            at,
            tz: effective_time_zone(space, spaces),
        })
    }

    fn on(&self, date: chrono::NaiveDate) -> Timestamp {
        local_instant(self.tz, date.and_time(self.at))
    }

    /// The latest reset at or before `t`.
    pub fn last_at_or_before(&self, t: Timestamp) -> Timestamp {
        let date = t.with_timezone(&self.tz).date_naive();
        // Today's, else yesterday's; the day before covers a reset pushed past midnight.
        for back in 0..3 {
            let r = self.on(date - Duration::days(back));
            if r <= t {
                return r;
            }
        }
        self.on(date - Duration::days(3))
    }

    /// Whether a reset falls after `after` and at or before `upto` (always, with no `after`).
    pub fn between(&self, after: Option<Timestamp>, upto: Timestamp) -> bool {
        after.is_none_or(|after| self.last_at_or_before(upto) > after)
    }

    /// The resets in `[from, to)`, in order.
    pub fn instants(&self, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut found = Vec::new();
        let mut date = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        loop {
            let r = self.on(date);
            if r >= to {
                return found;
            }
            if r >= from && found.last() != Some(&r) {
                found.push(r);
            }
            date += Duration::days(1);
        }
    }
}

/// A count read at `t` whose last crossing was at `last`: 0 if a reset came in between.
pub fn apply(reset: Option<&DailyReset>, count: i64, last: Option<Timestamp>, t: Timestamp) -> i64 {
    match (reset, last) {
        (Some(rule), Some(last)) if rule.between(Some(last), t) => 0,
        _ => count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn four_am_paris() -> DailyReset {
        DailyReset {
            at: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
            tz: Paris,
        }
    }

    #[test]
    fn resets_happen_at_local_time_across_daylight_saving() {
        let rule = four_am_paris();
        // 04:00 in Paris is 03:00 UTC in winter and 02:00 UTC in summer.
        assert_eq!(
            rule.instants(utc("2026-03-28T00:00:00Z"), utc("2026-03-31T00:00:00Z")),
            [
                utc("2026-03-28T03:00:00Z"),
                utc("2026-03-29T02:00:00Z"),
                utc("2026-03-30T02:00:00Z")
            ]
        );
        assert_eq!(
            rule.last_at_or_before(utc("2026-03-29T01:59:59Z")),
            utc("2026-03-28T03:00:00Z")
        );
        assert_eq!(
            rule.last_at_or_before(utc("2026-03-29T02:00:00Z")),
            utc("2026-03-29T02:00:00Z"),
            "a reset counts at its own instant"
        );
    }

    #[test]
    fn a_reset_time_the_clock_skips_happens_when_it_jumps() {
        let rule = DailyReset {
            at: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            tz: Paris,
        };
        // On 2026-03-29 Paris goes from 02:00 straight to 03:00 (01:00 UTC).
        assert_eq!(
            rule.last_at_or_before(utc("2026-03-29T12:00:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn a_count_after_a_reset_is_zero_until_the_next_crossing() {
        let rule = four_am_paris();
        let evening = utc("2026-11-27T20:00:00Z");
        assert_eq!(
            apply(Some(&rule), 5, Some(evening), utc("2026-11-28T02:59:59Z")),
            5
        );
        assert_eq!(
            apply(Some(&rule), 5, Some(evening), utc("2026-11-28T03:00:00Z")),
            0
        );
        assert_eq!(
            apply(None, 5, Some(evening), utc("2026-11-28T03:00:00Z")),
            5
        );
        assert!(
            rule.between(None, evening),
            "no earlier crossing: nothing to carry"
        );
    }
}
