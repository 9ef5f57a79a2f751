//! Live counts as Server-Sent Events. The source is the count topics the ingest workers
//! publish (`spaces/{id}/count`: after every commit, at daily resets, and when reconciling
//! after layout edits): the API subscribes to them on the broker, so a live stream works the
//! same with one `roomer serve` or with many workers and API processes behind an external
//! broker. A client first gets the current counts, then every change.

use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
pub use roomer_occupancy::topics::CountUpdate;
use roomer_occupancy::topics::COUNT_FILTER;
use roomer_occupancy::SpaceId;
use roomer_storage::Page;
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// Updates buffered per slow client before it is told it lagged.
const BUFFER: usize = 1024;

/// The API's subscription to the count topics, shared by every live client.
#[derive(Clone)]
pub struct LiveFeed {
    updates: broadcast::Sender<CountUpdate>,
    connected: Arc<AtomicBool>,
    /// Streams end with it, so open dashboards do not hold a stopping server up.
    shutdown: CancellationToken,
}

impl LiveFeed {
    /// Subscribes to the count topics on the broker `options` name (with their client id,
    /// login and TLS) until `shutdown`.
    pub fn connect(mut options: MqttOptions, shutdown: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(BUFFER);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, eventloop) = AsyncClient::new(options, 16);
        let connected = Arc::new(AtomicBool::new(false));
        tokio::spawn(follow(
            client,
            eventloop,
            updates.clone(),
            connected.clone(),
            shutdown.clone(),
        ));
        Self {
            updates,
            connected,
            shutdown,
        }
    }

    /// Whether the subscription to the count topics is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn subscribe(&self) -> broadcast::Receiver<CountUpdate> {
        self.updates.subscribe()
    }
}

async fn follow(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    updates: broadcast::Sender<CountUpdate>,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(100);
                connected.store(true, Ordering::Relaxed);
                // try_: this task is the one that drains the request channel.
                if let Err(e) = client.try_subscribe(COUNT_FILTER, QoS::AtMostOnce) {
                    tracing::warn!(error = %e, "live counts: could not subscribe");
                }
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                match CountUpdate::from_payload(&publish.payload) {
                    // No live client is not an error.
                    Ok(update) => drop(updates.send(update)),
                    Err(e) => {
                        tracing::warn!(topic = %publish.topic, error = %e, "live counts: not a count update")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                connected.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, retry_in = ?backoff, "live counts: broker unreachable");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What a live client is sent: the update, with `utilization` when the space has a capacity
/// (as it was when the stream opened).
#[derive(Serialize, utoipa::ToSchema)]
pub struct LiveCount {
    #[serde(flatten)]
    update: CountUpdate,
    #[serde(skip_serializing_if = "Option::is_none")]
    utilization: Option<f64>,
}

fn count_event(update: &CountUpdate, capacities: &HashMap<SpaceId, u32>) -> Event {
    let live = LiveCount {
        update: update.clone(),
        utilization: capacities
            .get(&update.space_id)
            .map(|&c| update.count as f64 / f64::from(c)),
    };
    Event::default()
        .event("count")
        .json_data(&live)
        .unwrap_or_else(|_| Event::default().event("count"))
}

/// The SSE stream: the current counts of `spaces` (all when `None`), then every change.
async fn stream(
    state: &AppState,
    only: Option<SpaceId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let live = state.live.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "live counts need the count topics: run the API with --mqtt-url of the broker the \
             ingest workers publish counts to"
                .into(),
        )
    })?;
    // Subscribe before reading the current counts, so nothing falls in between.
    let changes = BroadcastStream::new(live.subscribe());
    let now = chrono::Utc::now();
    let spaces = state.store.spaces(&Page::all()).await?;
    let capacities: HashMap<SpaceId, u32> = spaces
        .iter()
        .filter_map(|s| Some((s.space.id, s.space.capacity?)))
        .collect();
    let current: Vec<CountUpdate> = spaces
        .into_iter()
        .filter(|s| only.is_none_or(|id| s.space.id == id))
        .map(|s| CountUpdate {
            space_id: s.space.id,
            count: s.count,
            ts: now,
        })
        .collect();
    if let (Some(id), true) = (only, current.is_empty()) {
        return Err(ApiError::NotFound(format!("space {id} does not exist")));
    }
    // Workers publish a count again to settle it and when reconciling; a client hears of a
    // space only when its count differs from the last one this client was sent.
    let mut sent: HashMap<SpaceId, i64> = current.iter().map(|u| (u.space_id, u.count)).collect();
    let first: Vec<_> = current
        .iter()
        .map(|u| Ok(count_event(u, &capacities)))
        .collect();
    let first = tokio_stream::iter(first);
    let rest = changes.filter_map(move |change| match change {
        Ok(update) if only.is_none_or(|id| update.space_id == id) => {
            let changed = sent.insert(update.space_id, update.count) != Some(update.count);
            changed.then(|| Ok(count_event(&update, &capacities)))
        }
        Ok(_) => None,
        // Too slow to keep up: say so; the client re-reads the counts it needs.
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            sent.clear();
            Some(Ok(Event::default()
                .event("lagged")
                .data(missed.to_string())))
        }
    });
    let ends = live.shutdown.clone().cancelled_owned();
    let events = futures_util::StreamExt::take_until(first.chain(rest), ends);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/spaces/{id}/live`
#[utoipa::path(get, path = "/api/v1/spaces/{id}/live", tag = "live", params(("id" = i64, Path, description = "space id")), responses((status = 200, content_type = "text/event-stream", body = LiveCount, description = "`event: count` per change, the current count first"), (status = 404, description = "unknown id", body = Problem), (status = 503, description = "no broker to follow", body = Problem)))]
pub async fn space_live(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id: SpaceId = raw
        .parse()
        .map_err(|_| ApiError::NotFound(format!("space {raw:?} does not exist")))?;
    stream(&state, Some(id)).await
}

/// `GET /api/v1/live`: every space.
#[utoipa::path(get, path = "/api/v1/live", tag = "live", responses((status = 200, content_type = "text/event-stream", body = LiveCount, description = "`event: count` per change, every current count first"), (status = 503, description = "no broker to follow", body = Problem)))]
pub async fn all_live(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    stream(&state, None).await
}
