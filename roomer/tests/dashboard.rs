//! The dashboard in a real browser (headless Chromium over WebDriver): after the reference
//! data is replayed, the overview shows its counts and follows a new crossing without a
//! reload; a space page draws one bar per bucket of the range picked in its form; the DPU
//! pages show where each sensor hangs and what was refused; a server that needs tokens asks
//! for one once and keeps it out of every URL; every page fits a phone and a wall screen. Each
//! page is saved under `target/screenshots/`. Without `TEST_CHROMEDRIVER` the tests are
//! reported as ignored, never as passed.

mod common;

use common::browser::Browser;
use common::{
    app_with_example_building, publish_arrival, publish_raw, reference_csv, spawn_app_configured,
    App, Backend,
};
use roomer_simulator::{MqttTarget, ReplayOptions};
use std::time::{Duration, Instant};

/// The reference building with the reference data replayed in file order.
async fn replayed_reference_building() -> App {
    let app = app_with_example_building().await;
    let rows = roomer_simulator::read_csv(&reference_csv()).unwrap();
    let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
    options.batch = 50;
    roomer_simulator::replay(rows, &options).await.unwrap();
    app.wait_for_crossings(530).await;
    app
}

const SPACE_A: &str = r#"[data-space-id="1"] [data-live-count]"#;
const SPACE_B: &str = r#"[data-space-id="2"] [data-live-count]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn the_overview_shows_the_replayed_counts_and_a_new_entrance_without_a_reload() {
    let app = replayed_reference_building().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.http)).await;
    browser.find(r#"#live-status[data-state="live"]"#).await;
    assert_eq!(browser.text(SPACE_A).await, "4");
    assert_eq!(browser.text(SPACE_B).await, "9");
    assert_eq!(browser.count(".tree .space").await, 3, "Outside, A and B");
    browser.screenshot("dashboard-overview").await;

    // A mark on this very page: a reload would lose it.
    browser.script("window.sameDocument = 42;").await;
    let published = Instant::now();
    publish_arrival(&app, &chrono::Utc::now().to_rfc3339()).await;
    browser
        .wait_for_text(
            SPACE_A,
            "5",
            Duration::from_secs(2).saturating_sub(published.elapsed()),
        )
        .await;
    assert_eq!(
        browser.script("return window.sameDocument;").await,
        serde_json::json!(42),
        "the page was not reloaded"
    );
    assert_eq!(browser.text(SPACE_B).await, "9");
    browser.screenshot("dashboard-overview-live").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn the_live_mark_shows_when_the_server_is_lost_and_when_it_is_back() {
    let app = app_with_example_building().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.http)).await;
    browser.find(r#"#live-status[data-state="live"]"#).await;

    // Stopped and started again: the page notices the stream end, reconnects by itself and
    // says both.
    let app = app.restart().await;
    browser.find(r#"#live-status[data-state="live"]"#).await;
    let mark = browser.text("#live-status").await;
    assert!(
        mark.contains("back since") && mark.contains("lost at"),
        "the mark says the stream was lost and is back: {mark:?}"
    );
    browser.screenshot("dashboard-reconnected").await;

    // And once it is gone for good, the page says the counts may be stale.
    app.stop().await;
    browser.find(r#"#live-status[data-state="down"]"#).await;
    assert!(browser
        .text("#live-status")
        .await
        .contains("Not live since"));
    browser.screenshot("dashboard-disconnected").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn a_space_page_draws_one_bar_per_bucket_of_the_chosen_range() {
    let app = replayed_reference_building().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/ui/spaces/1", app.http)).await;
    assert_eq!(browser.text("h1").await, "Space A");

    // The range form, filled in as a person would pick: one day in hours.
    browser
        .script(
            r#"document.querySelector('#range input[name=from]').value = '2018-02-26T00:00';
               document.querySelector('#range input[name=to]').value = '2018-02-27T00:00';
               document.querySelector('#range select[name=interval]').value = '1h';"#,
        )
        .await;
    browser.find("#range button").await.click().await.unwrap();
    browser.find("#shown").await;
    assert!(browser.location().await.contains("interval=1h"));
    assert_eq!(browser.count("svg.chart g.bucket").await, 24);
    browser.screenshot("dashboard-space").await;

    // The same day in quarter hours.
    browser
        .script("document.querySelector('#range select[name=interval]').value = '15m';")
        .await;
    browser.find("#range button").await.click().await.unwrap();
    browser.find("#shown").await;
    assert!(browser.location().await.contains("interval=15m"));
    assert_eq!(browser.count("svg.chart g.bucket").await, 96);

    // The CSV link gives exactly the buckets shown.
    let csv = browser
        .find("#shown a[download]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (_, body) = app.get_text(&csv).await;
    assert_eq!(body.lines().count(), 1 + 96, "a header and 96 buckets");

    // The count at a moment: Space A held 11 people at midnight on the 27th.
    browser
        .script("document.querySelector('input[name=at]').value = '2018-02-27T00:00:00';")
        .await;
    browser
        .find("form.inline:not(#range) button")
        .await
        .click()
        .await
        .unwrap();
    let answer = browser.text("#moment-answer").await;
    assert!(answer.contains("there were 11 people"), "{answer}");
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn the_dpu_pages_show_where_each_hangs_and_what_was_refused() {
    let app = replayed_reference_building().await;
    publish_raw(&app, "dpus/283/crossings", b"{\"not\": \"a crossing\"").await;
    app.wait_for_rejected(1).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/ui/dpus", app.http)).await;
    assert!(browser
        .text(r#"tr[data-dpu="283"]"#)
        .await
        .contains("Doorway X (Outside → Space A)"));
    assert!(browser
        .text(r#"tr[data-dpu="423"]"#)
        .await
        .contains("Doorway Z (Space B → Space A)"));
    let refused = browser.text("table.rejected tbody").await;
    assert!(refused.contains("not_json"), "{refused}");
    assert!(refused.contains(r#"{"not": "a crossing""#), "{refused}");
    browser.screenshot("dashboard-dpus").await;

    browser
        .find(r#"tr[data-dpu="283"] a"#)
        .await
        .click()
        .await
        .unwrap();
    browser.find("h1").await;
    assert_eq!(browser.location().await, "/ui/dpus/283");
    assert_eq!(browser.text("h1").await, "DPU 283");
    assert!(browser.text("main").await.contains("Installation history"));
    browser.screenshot("dashboard-dpu").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn a_server_with_private_reads_asks_once_for_a_token_and_keeps_it_out_of_urls() {
    let app = spawn_app_configured(Backend::Sqlite, |config| config.public_read = false).await;
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    let (token, hash) = roomer_api::auth::new_token();
    store
        .create_token(&hash, roomer_storage::Role::Read, "wall screen")
        .await
        .unwrap();
    let browser = Browser::start().await;

    browser.goto(&format!("{}/", app.http)).await;
    assert_eq!(browser.location().await, "/ui/login");
    browser.screenshot("dashboard-login").await;
    browser
        .find("#token")
        .await
        .send_keys("roomer_not-a-token")
        .await
        .unwrap();
    browser
        .find("form.login button")
        .await
        .click()
        .await
        .unwrap();
    assert!(browser.text("p.error").await.contains("not known"));

    browser
        .find("#token")
        .await
        .send_keys(&token)
        .await
        .unwrap();
    browser
        .find("form.login button")
        .await
        .click()
        .await
        .unwrap();
    browser.find(r#"#live-status[data-state="live"]"#).await;
    assert_eq!(browser.location().await, "/");
    assert!(!browser.location().await.contains(&token));
    assert_eq!(
        browser.script("return document.cookie;").await,
        serde_json::json!(""),
        "no script can read the token"
    );
    // The token holds for the other pages too, and signing out forgets it.
    browser.goto(&format!("{}/ui/dpus", app.http)).await;
    assert_eq!(browser.location().await, "/ui/dpus");
    browser
        .find("form.logout button")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#token").await;
    browser.goto(&format!("{}/", app.http)).await;
    assert_eq!(browser.location().await, "/ui/login");
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn the_pages_fit_a_phone_and_a_wall_screen_and_the_keyboard_reaches_every_space() {
    let app = replayed_reference_building().await;
    let browser = Browser::start().await;
    let pages = [
        "/",
        "/ui/spaces/1?from=2018-02-26T00:00&to=2018-02-27T00:00&interval=1h",
        "/ui/dpus",
        "/docs",
    ];
    for (width, height, screen) in [(390, 844, "phone"), (1920, 1080, "wall")] {
        browser.client.set_window_size(width, height).await.unwrap();
        for path in pages {
            browser.goto(&format!("{}{path}", app.http)).await;
            browser.find("main").await;
            let fits = browser
                .script("const root = document.documentElement; return root.scrollWidth <= root.clientWidth;")
                .await;
            assert_eq!(
                fits,
                serde_json::json!(true),
                "{path} scrolls sideways on a {screen}"
            );
        }
        browser.goto(&format!("{}{}", app.http, pages[1])).await;
        browser.find("svg.chart").await;
        browser
            .screenshot(&format!("dashboard-space-{screen}"))
            .await;
    }

    // From the top of the overview, Tab first offers to skip the navigation, then reaches
    // every space's page.
    browser.goto(&format!("{}/", app.http)).await;
    browser.find("main").await;
    let mut reached = Vec::new();
    for _ in 0..12 {
        browser.press_tab().await;
        let focused = browser
            .script("return document.activeElement.getAttribute('href');")
            .await;
        reached.push(focused.as_str().unwrap_or("").to_owned());
    }
    assert_eq!(reached[0], "#main", "{reached:?}");
    for space in ["/ui/spaces/0", "/ui/spaces/1", "/ui/spaces/2"] {
        assert!(
            reached.iter().any(|r| r == space),
            "{space} not reached: {reached:?}"
        );
    }
    browser.close().await;
    app.stop().await;
}

/// A small office building: floors under the building, rooms under the floors, each room
/// with a capacity and a DPU over its door from the floor's hall, each floor a DPU over its
/// door from Outside.
/// A room: its id, its name, its capacity and how many people are in it.
type Room = (i64, &'static str, u32, i64);

/// Returns the layout and, per DPU, how many people walked in and from how many minutes ago.
fn office_building() -> (roomer_occupancy::Layout, Vec<(String, i64, i64)>) {
    use roomer_occupancy::layout::DpuLayout;
    use roomer_occupancy::{Doorway, Installation, Layout, Space};
    let since = chrono::Utc::now() - chrono::TimeDelta::hours(3);
    let mut layout = Layout::default();
    let mut building = Space::new(10, "Headquarters");
    building.time_zone = Some("Europe/Paris".parse().unwrap());
    layout.spaces.push(building);
    // (floor id, name, [(room id, name, capacity, people in it)])
    let floors: [(i64, &str, Vec<Room>); 2] = [
        (
            11,
            "Ground floor",
            vec![(111, "Lobby", 40, 12), (112, "Café", 60, 41)],
        ),
        (
            12,
            "First floor",
            vec![
                (121, "Meeting room Ada", 8, 7),
                (122, "Meeting room Grace", 8, 0),
                (123, "Open office", 50, 33),
            ],
        ),
    ];
    let mut arrivals = Vec::new();
    let mut door = |layout: &mut Layout, id: i64, from: i64, into: i64, people: i64| {
        layout.doorways.push(Doorway {
            id,
            name: format!("Door {id}"),
            exiting_to: from,
            entering_to: into,
        });
        let dpu = format!("dpu-{id}");
        layout.dpus.push(DpuLayout {
            id: roomer_occupancy::DpuId::new(dpu.clone()).unwrap(),
            installations: vec![Installation {
                doorway: id,
                from: since,
                until: None,
            }],
        });
        // Into the floors' halls first, an hour later on into the rooms.
        let minutes_ago = if from == 0 { 120 } else { 60 };
        arrivals.push((dpu, people, minutes_ago));
    };
    for (floor, name, rooms) in floors {
        let mut space = Space::new(floor, name);
        space.parent = Some(10);
        layout.spaces.push(space);
        // Everyone in the floor's rooms, and three more in its hall.
        let on_floor: i64 = rooms.iter().map(|r| r.3).sum::<i64>() + 3;
        door(&mut layout, floor, 0, floor, on_floor);
        for (id, name, capacity, people) in rooms {
            let mut room = Space::new(id, name);
            room.parent = Some(floor);
            room.capacity = Some(capacity);
            layout.spaces.push(room);
            door(&mut layout, id, floor, id, people);
        }
    }
    (layout, arrivals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_browser_tests),
    ignore = "set TEST_CHROMEDRIVER and TEST_CHROMIUM to chromedriver and chromium"
)]
async fn a_building_of_floors_and_rooms_shows_as_a_tree_with_how_full_each_room_is() {
    let app = common::spawn_app(Backend::Sqlite).await;
    let (layout, arrivals) = office_building();
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();
    let now = chrono::Utc::now();
    let mut crossings = Vec::new();
    for (dpu, people, minutes_ago) in &arrivals {
        for n in 0..*people {
            crossings.push(roomer_occupancy::Crossing::new(
                roomer_occupancy::DpuId::new(dpu.clone()).unwrap(),
                now - chrono::TimeDelta::minutes(*minutes_ago) + chrono::TimeDelta::seconds(n * 37),
                roomer_occupancy::Direction::In,
                None,
            ));
        }
    }
    let total = crossings.len();
    roomer_simulator::replay(crossings, &ReplayOptions::new(MqttTarget::from(app.mqtt)))
        .await
        .unwrap();
    app.wait_for_crossings(total).await;

    let browser = Browser::start().await;
    browser.goto(&format!("{}/", app.http)).await;
    browser.find(r#"#live-status[data-state="live"]"#).await;
    // The café sits in the ground floor's branch, which sits in the building's.
    let cafe = r#"[data-space-id="10"] + ul [data-space-id="11"] + ul [data-space-id="112"]"#;
    assert_eq!(
        browser.text(&format!("{cafe} [data-live-count]")).await,
        "41"
    );
    assert_eq!(
        browser.text(&format!("{cafe} [data-live-percent]")).await,
        "68%"
    );
    let meter = browser.find(&format!("{cafe} meter")).await;
    assert_eq!(meter.attr("value").await.unwrap().as_deref(), Some("41"));
    assert_eq!(
        browser
            .text(r#"[data-space-id="12"] [data-live-count]"#)
            .await,
        "3",
        "the first floor's hall"
    );
    browser.screenshot("dashboard-building").await;
    browser.close().await;
    app.stop().await;
}
