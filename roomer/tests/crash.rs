//! `roomer serve` killed with SIGKILL while a fleet uploads: the default setup acknowledges a
//! DPU's message only once it is stored, so nothing a DPU was told is safe can be lost; what
//! was not acknowledged, the DPUs send again when the server is back.

mod common;

use common::processes::{free_port, wait_for_port, RoomerProcess};
use roomer_occupancy::{reference, Crossing, Timestamp};
use roomer_simulator::{fleet_events, fleet_layout, MqttTarget, ReplayOptions};
use roomer_storage::testing::eventually;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const DPUS: usize = 50;
const EVENTS_PER_DPU: usize = 200;

fn start() -> Timestamp {
    "2018-02-26T00:00:00Z".parse().unwrap()
}

fn serve(mqtt: u16, http: u16, database_url: &str, log: &Path) -> RoomerProcess {
    let (mqtt, http) = (format!("127.0.0.1:{mqtt}"), format!("127.0.0.1:{http}"));
    let args = ["serve", "--mqtt-addr", &mqtt, "--http-addr", &http];
    RoomerProcess::spawn(&args, database_url, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let layout = fleet_layout(DPUS, 10, start());
    let store = roomer_storage::connect(&database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();
    let (mqtt, http) = (free_port(), free_port());
    let log = dir.path().join("serve.log");
    let server = serve(mqtt, http, &database_url, &log);
    wait_for_port("roomer serve's broker", mqtt).await;

    // 50 DPUs, 10,000 crossings in bulk uploads of 10, paced to about 2,000 crossings/s.
    let events = fleet_events(DPUS, EVENTS_PER_DPU, start(), 3);
    let replay = tokio::spawn({
        let mut options =
            ReplayOptions::new(MqttTarget::parse(&format!("mqtt://127.0.0.1:{mqtt}")).unwrap());
        options.batch = 10;
        options.speed = Some(2_400.0);
        let events = events.clone();
        async move { roomer_simulator::replay(events, &options).await.unwrap() }
    });
    let stored = || async { store.totals().await.unwrap().crossings };
    eventually("a fifth to be stored", Duration::from_secs(60), || async {
        (stored().await >= 2_000).then_some(())
    })
    .await;

    server.kill();
    let at_the_crash = stored().await;
    let _server = serve(mqtt, http, &database_url, &log);

    // The DPUs reconnect and resend whatever they were not told was stored.
    let report = tokio::time::timeout(Duration::from_secs(120), replay)
        .await
        .expect("the replay finishes")
        .unwrap();
    assert_eq!(report.events, DPUS * EVENTS_PER_DPU);
    let distinct: BTreeSet<_> = events.iter().map(Crossing::key).collect();
    eventually(
        "every crossing to be stored",
        Duration::from_secs(60),
        || async { (stored().await == distinct.len() as i64).then_some(()) },
    )
    .await;
    assert!(
        at_the_crash < distinct.len() as i64,
        "the kill landed mid-upload ({at_the_crash} of {} stored)",
        distinct.len()
    );
    assert_eq!(store.totals().await.unwrap().rejected, 0, "nothing refused");
    let far = start() + chrono::TimeDelta::days(365);
    for space in layout
        .spaces
        .iter()
        .map(|s| s.id)
        .chain([roomer_occupancy::OUTSIDE])
    {
        assert_eq!(
            store.count_at(space, Some(far)).await.unwrap(),
            Some(reference::count_at(&layout, &events, space, far)),
            "space {space}"
        );
    }
}
