//! `/ui/spaces/{id}`: one space. Its live count, its history as a chart over a range the
//! reader picks (buckets of local time in the space's zone, as `GET /api/v1/spaces/{id}/counts`
//! answers them), the same buckets as a table and as CSV, and its count at any moment.
//!
//! Every choice is a query parameter of an ordinary form (`from`, `to`, `interval`, `at`, in
//! the space's local time), so a view can be bookmarked and works without script.

use super::chart::chart;
use super::overview::{live_status, utilization};
use super::{error_page, frame, respond, Section};
use crate::history::{self, BucketOut, HistoryQuery};
use crate::time::parse_local_instant;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use roomer_occupancy::SpaceId;
use serde::{Deserialize, Serialize};

/// The most buckets one chart draws; a longer range is cut there, and says so.
const MOST_BUCKETS: usize = 2000;
/// The bucket sizes the API knows, as offered in the picker.
const INTERVALS: [(&str, &str); 6] = [
    ("1m", "1 minute"),
    ("5m", "5 minutes"),
    ("15m", "15 minutes"),
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("1w", "1 week"),
];
/// How `datetime-local` inputs write a time, and how presets do.
const LOCAL: &str = "%Y-%m-%dT%H:%M";

/// What the reader picked, as local times in the space's zone.
#[derive(Debug, Default, Deserialize)]
pub struct SpaceQuery {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    at: Option<String>,
}

/// The range presets: a label, how far back from now, and the bucket size.
const PRESETS: [(&str, i64, &str); 5] = [
    ("Last hour", 60, "1m"),
    ("Last 24 hours", 24 * 60, "1h"),
    ("Last 7 days", 7 * 24 * 60, "1h"),
    ("Last 30 days", 30 * 24 * 60, "1d"),
    ("Last 26 weeks", 26 * 7 * 24 * 60, "1w"),
];

/// `GET /ui/spaces/{id}?from=&to=&interval=&at=`
pub async fn page(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(query): Query<SpaceQuery>,
) -> Response {
    match render(&state, &raw, query).await {
        Ok(page) => respond(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

/// The range and bucket size to show, with the defaults filled in.
struct Range {
    from: String,
    to: String,
    interval: String,
}

/// Now in `tz`, to the next whole minute (so that the last bucket includes now).
fn local_now(tz: Tz) -> NaiveDateTime {
    let now = Utc::now().with_timezone(&tz).naive_local();
    let minute = now.with_second(0).and_then(|t| t.with_nanosecond(0));
    minute.map_or(now, |m| m + TimeDelta::minutes(1))
}

fn nonempty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

async fn render(state: &AppState, raw: &str, query: SpaceQuery) -> Result<Markup, ApiError> {
    let id: SpaceId = raw
        .parse()
        .map_err(|_| ApiError::NotFound(format!("space {raw:?} does not exist")))?;
    let space = state
        .store
        .space(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("space {id} does not exist")))?;
    let chain = state.store.space_chain(id).await?;
    let tz = roomer_occupancy::layout::effective_time_zone(id, &chain);
    let now = local_now(tz);
    let to = nonempty(query.to).unwrap_or_else(|| now.format(LOCAL).to_string());
    let from = nonempty(query.from)
        .unwrap_or_else(|| (now - TimeDelta::hours(24)).format(LOCAL).to_string());
    let range = Range {
        from,
        to,
        interval: nonempty(query.interval).unwrap_or_else(|| "1h".into()),
    };
    let history_query = HistoryQuery {
        start_time: range.from.clone(),
        end_time: Some(range.to.clone()),
        interval: Some(range.interval.clone()),
        time_zone: None,
        format: None,
        limit: Some(MOST_BUCKETS),
    };
    // A range that cannot be drawn is said beside the form, not instead of the page.
    let history = match history::answer_for(state, id, &chain, &history_query).await {
        Ok(answer) => Ok(answer),
        Err(ApiError::BadRequest(why)) => Err(why),
        Err(other) => return Err(other),
    };
    let moment = match nonempty(query.at) {
        None => None,
        Some(at) => Some(count_at(state, id, tz, &at).await.map(|n| (at, n))),
    };
    let csv = csv_link(id, &range);
    let body = html! {
        p.breadcrumbs {
            a href="/" { "Building" }
            @for ancestor in chain.iter().rev().filter(|s| s.id != id) {
                " › " a href={ "/ui/spaces/" (ancestor.id) } { (ancestor.name) }
            }
        }
        div.heading {
            h1 { (space.space.name) }
            (live_status())
        }
        div.now data-space-id=(id) {
            span.count.big data-live-count aria-label="people now" { (space.count) }
            " people now "
            (utilization(&space))
        }
        p.muted { "Times are local to " (tz.name()) "." }
        section aria-labelledby="history-title" {
            h2 #history-title { "History" }
            (range_form(id, &range))
            (presets(id, tz))
            @match &history {
                Err(why) => p.error role="alert" { (why) },
                Ok(answer) => {
                    p #shown {
                        (answer.rows.len()) " buckets of " (range.interval) ". "
                        a href=(csv) download={ "space-" (id) "-" (range.interval) ".csv" } { "Download CSV" }
                    }
                    @if answer.next.is_some() {
                        p.warning role="note" {
                            "The range holds more than " (MOST_BUCKETS) " buckets of " (range.interval)
                            "; the first " (MOST_BUCKETS) " are shown. Choose a larger bucket size."
                        }
                    }
                    (chart(&answer.rows, |b| label(b, &range.interval)))
                    p.legend {
                        span.key.count-key {} " count at the end of the bucket "
                        span.key.range-key {} " lowest to highest "
                        span.key.in-key {} " entrances "
                        span.key.out-key {} " exits"
                    }
                    details { summary { "The buckets as a table" } (table(&answer.rows)) }
                }
            }
        }
        section aria-labelledby="moment-title" {
            h2 #moment-title { "Count at a moment" }
            form.inline method="get" action={ "/ui/spaces/" (id) } {
                input type="hidden" name="from" value=(range.from);
                input type="hidden" name="to" value=(range.to);
                input type="hidden" name="interval" value=(range.interval);
                label { "At " input type="datetime-local" name="at" step="1" required; }
                button type="submit" { "Show count" }
            }
            @match &moment {
                None => {},
                Some(Ok((at, n))) => p #moment-answer role="status" {
                    "At " (at.replace('T', " ")) " there were " strong { (n) } " people in " (space.space.name) "."
                },
                Some(Err(why)) => p.error role="alert" { (why) },
            }
        }
    };
    Ok(frame(
        &space.space.name,
        Section::Building,
        !state.access.public_read,
        body,
    ))
}

/// The count at local time `at`, or why there is none.
async fn count_at(state: &AppState, id: SpaceId, tz: Tz, at: &str) -> Result<i64, String> {
    let t = parse_local_instant(at, tz).map_err(|e| e.to_string())?;
    match state.store.count_at(id, Some(t)).await {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(format!("space {id} does not exist")),
        Err(e) => Err(ApiError::from(e).to_string()),
    }
}

fn range_form(id: SpaceId, range: &Range) -> Markup {
    html! {
        form.inline #range method="get" action={ "/ui/spaces/" (id) } {
            label { "From " input type="datetime-local" name="from" value=(range.from) required; }
            label { "To " input type="datetime-local" name="to" value=(range.to) required; }
            label {
                "Buckets "
                select name="interval" {
                    @for (value, text) in INTERVALS {
                        option value=(value) selected[value == range.interval] { (text) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

fn presets(id: SpaceId, tz: Tz) -> Markup {
    let now = local_now(tz);
    html! {
        p.presets {
            @for (text, minutes, interval) in PRESETS {
                @let from = (now - TimeDelta::minutes(minutes)).format(LOCAL).to_string();
                @let link = page_link(id, &from, &now.format(LOCAL).to_string(), interval);
                a href=(link) { (text) }
            }
        }
    }
}

#[derive(Serialize)]
struct Link<'a> {
    from: &'a str,
    to: &'a str,
    interval: &'a str,
}

fn page_link(id: SpaceId, from: &str, to: &str, interval: &str) -> String {
    let query = serde_urlencoded::to_string(Link { from, to, interval }).unwrap_or_default();
    format!("/ui/spaces/{id}?{query}")
}

#[derive(Serialize)]
struct CsvQuery<'a> {
    start_time: &'a str,
    end_time: &'a str,
    interval: &'a str,
    limit: usize,
    format: &'static str,
}

/// The JSON route's CSV of exactly the buckets shown.
fn csv_link(id: SpaceId, range: &Range) -> String {
    let query = serde_urlencoded::to_string(CsvQuery {
        start_time: &range.from,
        end_time: &range.to,
        interval: &range.interval,
        limit: MOST_BUCKETS,
        format: "csv",
    })
    .unwrap_or_default();
    format!("/api/v1/spaces/{id}/counts?{query}")
}

/// A bucket's start as its size makes sense of it.
fn label(bucket: &BucketOut, interval: &str) -> String {
    let format = match interval {
        "1d" => "%a %Y-%m-%d",
        "1w" => "%Y-%m-%d",
        _ => "%m-%d %H:%M",
    };
    bucket.start.format(format).to_string()
}

fn table(rows: &[BucketOut]) -> Markup {
    html! {
        table.buckets {
            thead { tr {
                th scope="col" { "Start" } th scope="col" { "End" } th scope="col" { "Count" }
                th scope="col" { "Lowest" } th scope="col" { "Highest" }
                th scope="col" { "Entrances" } th scope="col" { "Exits" }
            } }
            tbody {
                @for b in rows {
                    tr {
                        td { (b.start.format("%Y-%m-%d %H:%M")) } td { (b.end.format("%Y-%m-%d %H:%M")) }
                        td { (b.count) } td { (b.min) } td { (b.max) }
                        td { (b.entrances) } td { (b.exits) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_range_escaped() {
        let range = Range {
            from: "2026-01-05T08:00".into(),
            to: "2026-01-06T08:00".into(),
            interval: "1h".into(),
        };
        assert_eq!(
            csv_link(7, &range),
            "/api/v1/spaces/7/counts?start_time=2026-01-05T08%3A00&end_time=2026-01-06T08%3A00\
             &interval=1h&limit=2000&format=csv"
        );
        assert_eq!(
            page_link(7, "a b", "c", "1d"),
            "/ui/spaces/7?from=a+b&to=c&interval=1d"
        );
    }
}
