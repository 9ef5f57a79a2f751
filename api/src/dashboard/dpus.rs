//! `/ui/dpus`: every sensor (online or not, last heard from, crossings today, the doorway it
//! hangs over now) and the newest messages ingestion refused, with their reasons and raw
//! payloads. `/ui/dpus/{id}`: one sensor, its installation history and its refused messages.

use super::{error_page, frame, respond, time_utc, Section};
use crate::dpus::day_start;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use roomer_occupancy::{Doorway, DoorwayId, SpaceId};
use roomer_storage::{DpuInfo, Page, Rejected, RejectedFilter};
use std::collections::HashMap;

/// Refused messages listed on a page.
const REJECTED_SHOWN: u32 = 50;

/// Doorway and space names, to say where a DPU hangs in words.
struct Names {
    doorways: HashMap<DoorwayId, Doorway>,
    spaces: HashMap<SpaceId, String>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Self, ApiError> {
        let doorways = state.store.doorways(&Page::all()).await?;
        let spaces = state.store.spaces(&Page::all()).await?;
        Ok(Self {
            doorways: doorways.into_iter().map(|d| (d.id, d)).collect(),
            spaces: spaces
                .into_iter()
                .map(|s| (s.space.id, s.space.name))
                .collect(),
        })
    }

    fn space(&self, id: SpaceId) -> String {
        self.spaces
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("space {id}"))
    }

    /// "Doorway X (Outside → Space A)": the name, and a +1's direction.
    fn doorway(&self, id: DoorwayId) -> Markup {
        match self.doorways.get(&id) {
            Some(d) => html! {
                (d.name) " "
                span.muted { "(" (self.space(d.exiting_to)) " → " (self.space(d.entering_to)) ")" }
            },
            None => html! { "doorway " (id) },
        }
    }
}

/// `GET /ui/dpus`
pub async fn list(State(state): State<AppState>) -> Response {
    let page = async {
        let now = Utc::now();
        let dpus = state
            .store
            .dpus(None, &Page::all(), now, day_start(now))
            .await?;
        let rejected = state
            .store
            .rejected(&RejectedFilter::newest(REJECTED_SHOWN))
            .await?;
        let names = Names::load(&state).await?;
        Ok::<_, ApiError>(frame(
            "DPUs",
            Section::Dpus,
            !state.access.public_read,
            html! {
                h1 { "DPUs" }
                (dpu_table(&dpus, &names))
                h2 { "Refused messages" }
                p.muted { "The newest " (REJECTED_SHOWN) ", kept for inspection; nothing refused is counted." }
                (rejected_table(&rejected))
            },
        ))
    };
    match page.await {
        Ok(page) => respond(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

/// `GET /ui/dpus/{id}`
pub async fn one(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let page = async {
        let (id, dpu) = crate::dpus::find(&state, &raw).await?;
        let installations = state.store.installations(&id).await?;
        let rejected = state
            .store
            .rejected(&RejectedFilter {
                dpu_id: Some(raw.clone()),
                ..RejectedFilter::newest(REJECTED_SHOWN)
            })
            .await?;
        let names = Names::load(&state).await?;
        Ok::<_, ApiError>(frame(
            &format!("DPU {raw}"),
            Section::Dpus,
            !state.access.public_read,
            html! {
                p.breadcrumbs { a href="/ui/dpus" { "DPUs" } }
                h1 { "DPU " (raw) }
                (dpu_table(std::slice::from_ref(&dpu), &names))
                h2 { "Installation history" }
                @if installations.is_empty() {
                    p.muted { "No installation: its crossings wait as pending until one covers them." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Doorway" } th scope="col" { "From" } th scope="col" { "Until" } } }
                        tbody {
                            @for i in installations.iter().rev() {
                                tr {
                                    td { (names.doorway(i.doorway)) }
                                    td { (time_utc(Some(i.from))) }
                                    td { @match i.until { Some(t) => (time_utc(Some(t))), None => "now" } }
                                }
                            }
                        }
                    }
                }
                h2 { "Refused messages" }
                (rejected_table(&rejected))
            },
        ))
    };
    match page.await {
        Ok(page) => respond(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

fn dpu_table(dpus: &[DpuInfo], names: &Names) -> Markup {
    if dpus.is_empty() {
        return html! { p.muted { "No DPU is declared or has been heard from." } };
    }
    html! {
        table.dpus {
            thead { tr {
                th scope="col" { "DPU" } th scope="col" { "State" } th scope="col" { "Last seen" }
                th scope="col" { "Crossings today" } th scope="col" { "Hangs over" }
            } }
            tbody {
                @for d in dpus {
                    tr data-dpu=(d.id) {
                        th scope="row" { a href={ "/ui/dpus/" (d.id) } { (d.id) } }
                        td { (state(d.online)) }
                        td { (time_utc(d.last_seen)) }
                        td.number { (d.events_today) }
                        td { @match d.doorway { Some(id) => (names.doorway(id)), None => span.muted { "nothing now" } } }
                    }
                }
            }
        }
    }
}

/// What a DPU last said of itself, as a word with a mark that does not rely on colour alone.
fn state(online: Option<bool>) -> Markup {
    match online {
        Some(true) => html! { span.state.online { "● online" } },
        Some(false) => html! { span.state.offline { "○ offline" } },
        None => html! { span.state.muted { "? no status yet" } },
    }
}

fn rejected_table(rejected: &[Rejected]) -> Markup {
    if rejected.is_empty() {
        return html! { p.muted { "None." } };
    }
    html! {
        table.rejected {
            thead { tr {
                th scope="col" { "Received" } th scope="col" { "From" } th scope="col" { "Reason" }
                th scope="col" { "Payload" }
            } }
            tbody {
                @for r in rejected {
                    tr {
                        td { (time_utc(Some(r.received_at))) }
                        td {
                            @if let Some(dpu) = &r.dpu_id { a href={ "/ui/dpus/" (dpu) } { (dpu) } br; }
                            span.muted { (r.source) }
                        }
                        td { code { (r.reason) } br; (r.detail) }
                        td { pre { code { (payload_text(&r.payload)) } } }
                    }
                }
            }
        }
    }
}

/// A refused payload as text, cut short when long (a bulk upload can be 64 KiB).
fn payload_text(payload: &[u8]) -> String {
    const SHOWN: usize = 2000;
    let text = String::from_utf8_lossy(payload);
    if text.chars().count() <= SHOWN {
        return text.into_owned();
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("{head}… ({} bytes in all)", payload.len())
}
