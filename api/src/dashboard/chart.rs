//! A space's history as an inline SVG chart: per bucket, the count at its end with the range
//! it moved through, and beneath, the entrances (up) and exits (down). Drawn on the server,
//! so the page needs no charting script; each bucket carries a `<title>` that browsers show
//! on hover and screen readers read.

use crate::history::BucketOut;
use maud::{html, Markup};

const WIDTH: f64 = 1000.0;
/// The count panel, then a gap, then the entrances and exits panel.
const COUNT_TOP: f64 = 20.0;
const COUNT_HEIGHT: f64 = 200.0;
const FLOW_TOP: f64 = 250.0;
const FLOW_HEIGHT: f64 = 80.0;
const HEIGHT: f64 = FLOW_TOP + FLOW_HEIGHT + 24.0;

/// The chart of `buckets`, whose times are written as `label` formats them.
pub fn chart(buckets: &[BucketOut], label: impl Fn(&BucketOut) -> String) -> Markup {
    if buckets.is_empty() {
        return html! { p.muted { "No buckets in this range." } };
    }
    let top = buckets
        .iter()
        .map(|b| b.max.max(b.count))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let flow_top = buckets
        .iter()
        .map(|b| b.entrances.max(b.exits))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = WIDTH / buckets.len() as f64;
    let bar = (step * 0.8).max(0.5);
    let y = |count: i64| COUNT_TOP + COUNT_HEIGHT - (count.max(0) as f64 / top) * COUNT_HEIGHT;
    let middle = FLOW_TOP + FLOW_HEIGHT / 2.0;
    let flow = |n: u64| (n as f64 / flow_top) * (FLOW_HEIGHT / 2.0);
    let ticks = tick_indices(buckets.len());
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-label={ "History in " (buckets.len()) " buckets" } {
            text.axis x="0" y="12" { "max " (top as i64) }
            line.baseline x1="0" x2=(WIDTH) y1=(y(0)) y2=(y(0)) {}
            line.baseline x1="0" x2=(WIDTH) y1=(middle) y2=(middle) {}
            text.axis x="0" y=(FLOW_TOP - 6.0) { "in ↑ / out ↓ (max " (flow_top as i64) ")" }
            @for (i, b) in buckets.iter().enumerate() {
                @let x = i as f64 * step + (step - bar) / 2.0;
                g.bucket data-count=(b.count) {
                    title {
                        (label(b)) ": " (b.count) " at the end (" (b.min) "–" (b.max) "), "
                        (b.entrances) " in, " (b.exits) " out"
                    }
                    rect.range x=(fmt(x)) width=(fmt(bar)) y=(fmt(y(b.max)))
                        height=(fmt(y(b.min) - y(b.max))) {}
                    rect.count x=(fmt(x)) width=(fmt(bar)) y=(fmt(y(b.count)))
                        height=(fmt(y(0) - y(b.count))) {}
                    rect.entrances x=(fmt(x)) width=(fmt(bar)) y=(fmt(middle - flow(b.entrances)))
                        height=(fmt(flow(b.entrances))) {}
                    rect.exits x=(fmt(x)) width=(fmt(bar)) y=(fmt(middle))
                        height=(fmt(flow(b.exits))) {}
                }
            }
            @for i in ticks {
                @let x = (i as f64 + 0.5) * step;
                text.axis.tick x=(fmt(x)) y=(HEIGHT - 4.0) text-anchor="middle" { (label(&buckets[i])) }
            }
        }
    }
}

/// Coordinates to a tenth, which is finer than any screen shows.
fn fmt(v: f64) -> String {
    format!("{:.1}", v.max(0.0))
}

/// Which buckets get a time under the axis: the first, the last and up to three between.
fn tick_indices(n: usize) -> Vec<usize> {
    let mut ticks: Vec<usize> = (0..5).map(|k| k * (n - 1) / 4).collect();
    ticks.dedup();
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset, TimeDelta};

    fn bucket(i: i64, count: i64) -> BucketOut {
        let start: DateTime<FixedOffset> = "2026-01-05T00:00:00+01:00".parse().unwrap();
        BucketOut {
            start: start + TimeDelta::hours(i),
            end: start + TimeDelta::hours(i + 1),
            count,
            min: 0,
            max: count + 1,
            entrances: 3,
            exits: 1,
            utilization: None,
        }
    }

    #[test]
    fn every_bucket_is_drawn_once_with_its_numbers() {
        let buckets: Vec<_> = (0..24).map(|i| bucket(i, i % 5)).collect();
        let svg = chart(&buckets, |b| b.start.format("%H:%M").to_string()).into_string();
        assert_eq!(svg.matches(r#"<g class="bucket""#).count(), 24);
        assert!(
            svg.contains("23:00: 3 at the end (0–4), 3 in, 1 out"),
            "{svg}"
        );
        assert_eq!(tick_indices(24), [0, 5, 11, 17, 23]);
        assert_eq!(tick_indices(1), [0]);
    }

    #[test]
    fn nothing_to_draw_says_so() {
        assert!(chart(&[], |_| String::new())
            .into_string()
            .contains("No buckets"));
    }
}
