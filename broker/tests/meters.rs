//! The broker's meters, read off rumqttd's own events: connections, publishes, and — the one
//! that matters — messages a lagging subscriber lost because the in-memory log had already
//! dropped them. Its own test binary: the meters hang off the process-wide tracing dispatcher.

mod common;

use common::{connect, connect_persistent, free_addr, Seen};
use roomer_broker::{meters, BrokerConfig, EmbeddedBroker};
use std::time::Duration;
use tokio::time::Instant;

/// ERROR events Roomer's broker code logs (not rumqttd's), as an operator's log would show.
static ERRORS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct ErrorsLogged;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorsLogged {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::ERROR && meta.target().starts_with("roomer_broker") {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut message = Message(String::new());
            event.record(&mut message);
            ERRORS.lock().unwrap().push(message.0);
        }
    }
}

/// The meters are process-wide: the stories of this binary take turns, each with the meters
/// and the error log installed.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry()
            .with(meters::layer())
            .with(ErrorsLogged);
        tracing::subscriber::set_global_default(subscriber)
            .expect("the first subscriber of this process");
    });
    TURN.lock().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_lags_past_the_log_is_counted_as_losing_messages() {
    let _turn = one_at_a_time().await;
    // A tiny log: two segments of 1 KiB keep a couple of dozen messages.
    let broker = EmbeddedBroker::start(BrokerConfig {
        segment_bytes: 1024,
        segment_count: 2,
        health_interval: None,
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let before = meters::snapshot();

    // A worker with a persistent session subscribes, then goes away…
    let mut lagger = connect_persistent(broker.local_addr(), "lagging-worker");
    lagger.subscribe("dpus/+/crossings").await;
    lagger.client.disconnect().await.unwrap();
    drop(lagger);
    // …while a DPU publishes far more than the log holds.
    let published: u64 = 300;
    let mut dpu = connect(broker.local_addr(), "dpu-283", None);
    for i in 0..published {
        let payload = format!(
            r#"{{"ts":"2018-02-24T08:45:{:02}.{i:03}Z","direction":1}}"#,
            i % 60
        );
        dpu.publish_acked("dpus/283/crossings", false, payload.into_bytes())
            .await;
    }

    // Back, it gets what the log still holds; the rest is lost, and counted as lost.
    let mut lagger = connect_persistent(broker.local_addr(), "lagging-worker");
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lost = meters::snapshot().lost_messages - before.lost_messages;
        if received + lost == published || Instant::now() > deadline {
            break;
        }
        if lagger
            .wait_for(|s| matches!(s, Seen::Publish(_)).then_some(()))
            .await
            .is_some()
        {
            received += 1;
        }
    }
    let after = meters::snapshot();
    let lost = after.lost_messages - before.lost_messages;
    eprintln!("received {received}, lost {lost}, meters {after:?}");
    assert!(lost > 0, "messages were dropped from the log");
    assert!(received > 0, "the log's tail still arrives");
    assert_eq!(
        received + lost,
        published,
        "every message is either delivered or counted"
    );
    assert!(after.cursor_jumps > before.cursor_jumps);
    let logged = ERRORS.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|line| line.contains("dropped messages a lagging subscriber had not read")),
        "the loss is logged as an error: {logged:?}"
    );
    assert!(after.publishes - before.publishes >= published);
    assert!(after.connections_opened - before.connections_opened >= 3);
    assert!(
        after.connections >= 2,
        "the DPU and the worker are connected"
    );
    broker.shutdown();
}

/// No client can kill rumqttd's router any more, but should it die (a panic inside rumqttd),
/// the supervisor replaces the whole broker, and what the dead router held is gone: the DPU
/// messages it had acknowledged that the worker had not acknowledged in turn. That number is
/// counted in `lost_messages` and logged as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_dies_is_replaced_and_what_it_held_is_counted_as_lost() {
    let _turn = one_at_a_time().await;
    let broker = EmbeddedBroker::start(BrokerConfig {
        health_interval: Some(Duration::from_millis(50)),
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let addr = broker.local_addr();
    let before = meters::snapshot();

    // The worker takes (and acknowledges) three crossings, then goes away; seven more wait
    // for it in its persistent session.
    let mut worker = connect_persistent(addr, "ingest-worker");
    worker.subscribe("dpus/+/crossings").await;
    let mut dpu = connect(addr, "dpu-283", None);
    for i in 0..3 {
        dpu.publish_acked("dpus/283/crossings", false, format!("taken {i}").into())
            .await;
        assert!(worker.next_publish().await.is_some());
    }
    // Its PUBACKs went out before this publish of its own, on the same connection: once the
    // broker has acknowledged it, it has read (and counted) them.
    worker
        .publish_acked("spaces/0/worker-says", false, b"acks sent".to_vec())
        .await;
    worker.client.disconnect().await.unwrap();
    drop(worker);
    for i in 0..7 {
        dpu.publish_acked("dpus/283/crossings", false, format!("held {i}").into())
            .await;
    }

    broker.kill_router();
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.restarts() == 0 {
        assert!(
            Instant::now() < deadline,
            "the dead router was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = meters::snapshot();
    assert_eq!(after.restarts - before.restarts, 1);
    assert_eq!(after.lost_messages - before.lost_messages, 7);
    let logged = ERRORS.lock().unwrap().clone();
    assert!(
        logged.iter().any(|line| line.contains("router died")),
        "the loss is logged as an error: {logged:?}"
    );

    // Served again on the same port.
    let mut reader = connect(addr, "reader", None);
    reader.subscribe("dpus/+/crossings").await;
    let mut dpu = connect(addr, "dpu-284", None);
    dpu.publish_acked("dpus/284/crossings", false, b"after".to_vec())
        .await;
    assert_eq!(&reader.next_publish().await.unwrap().payload[..], b"after");
    broker.shutdown();
}
