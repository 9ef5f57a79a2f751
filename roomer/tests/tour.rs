//! The README's tour, run as written: every `$R …` line of its code block is run with the
//! `roomer` binary in an empty directory (as on a fresh clone), every `curl` line is sent to a
//! `roomer serve` started beside it, and each answer must be what the `# …` lines under the
//! command say. Only the addresses differ: the server gets free ports, which the commands
//! reach through the environment variables every flag also reads.

mod common;

use common::processes::{free_port, wait_for_port, RoomerProcess};
use common::workspace_file;
use std::process::Command;

const ROOMER: &str = env!("CARGO_BIN_EXE_roomer");

/// A line of the tour and what the README says it answers.
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The commands of the README's tour, in order, each with the comment lines under it.
fn tour() -> Vec<Step> {
    let readme = std::fs::read_to_string(workspace_file("README.md")).unwrap();
    let section = readme
        .split("## A five-minute tour")
        .nth(1)
        .expect("the README has a tour");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the tour has a code block");
    let mut steps: Vec<Step> = Vec::new();
    let mut after_command = false;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            // Comments under a command are its answer; comments above one explain it.
            if after_command {
                if let Some(step) = steps.last_mut() {
                    step.expected.push(comment.to_owned());
                }
            }
        } else if line.starts_with("$R ") || line.starts_with("curl ") {
            steps.push(Step {
                command: line.to_owned(),
                expected: Vec::new(),
            });
            after_command = true;
        } else {
            after_command = false;
        }
    }
    steps
}

/// What the README shows of an answer: a JSON body (anything after four spaces is a remark),
/// or the first lines of a CSV body up to `…`.
fn assert_answer(command: &str, expected: &[String], body: &str) {
    let Some(first) = expected.first() else {
        return;
    };
    if first.starts_with('{') || first.starts_with('[') {
        let shown = first.split("    ").next().unwrap();
        let expected: serde_json::Value = serde_json::from_str(shown).unwrap();
        let answered: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {body}"));
        assert_eq!(answered, expected, "{command}");
    } else {
        let lines: Vec<&str> = body.lines().collect();
        for (i, line) in expected.iter().take_while(|l| *l != "…").enumerate() {
            assert_eq!(
                lines.get(i).copied(),
                Some(line.as_str()),
                "{command}, line {i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_answers_what_it_says_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let (http, mqtt) = (free_port(), free_port());
    let _server = RoomerProcess::spawn(
        &[
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{http}"),
            "--mqtt-addr",
            &format!("127.0.0.1:{mqtt}"),
        ],
        &database_url,
        &dir.path().join("serve.log"),
    );
    wait_for_port("roomer serve's API", http).await;
    wait_for_port("roomer serve's broker", mqtt).await;
    let work = dir.path().join("clone");
    std::fs::create_dir(&work).unwrap();

    let steps = tour();
    assert!(steps.len() >= 6, "the tour has its commands");
    for step in &steps {
        let words = shlex::split(&step.command).expect("a shell line");
        if words[0] == "$R" {
            let output = Command::new(ROOMER)
                .args(&words[1..])
                .current_dir(&work)
                .env("DATABASE_URL", &database_url)
                .env("ROOMER_MQTT_URL", format!("mqtt://127.0.0.1:{mqtt}"))
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                step.command,
                String::from_utf8_lossy(&output.stderr)
            );
        } else {
            let url = words
                .iter()
                .find(|w| w.starts_with("localhost:8000"))
                .expect("a curl of the API")
                .replace("localhost:8000", &format!("http://127.0.0.1:{http}"));
            let response = reqwest::get(&url).await.unwrap();
            assert!(response.status().is_success(), "{}", step.command);
            let body = response.text().await.unwrap();
            assert_answer(&step.command, &step.expected, &body);
        }
    }
}
