//! Reading crossings from CSV files: the reference data, and what other files look like.

mod common;

use common::reference_csv;
use roomer_occupancy::{Direction, DpuId};
use roomer_simulator::{read_csv, SimError};
use std::collections::BTreeSet;
use std::io::Write;

fn temp_csv(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn the_reference_file_holds_563_crossings_of_dpus_283_and_423_with_repeats_kept() {
    let crossings = read_csv(&reference_csv()).expect("the reference file reads");

    assert_eq!(crossings.len(), 563);
    let dpus: BTreeSet<String> = crossings.iter().map(|c| c.dpu.to_string()).collect();
    assert_eq!(dpus, BTreeSet::from(["283".to_owned(), "423".to_owned()]));
    // File order: the first row is DPU 423 walking in at 08:45:21.893.
    let first = &crossings[0];
    assert_eq!(first.dpu, DpuId::new("423").unwrap());
    assert_eq!(
        first.ts,
        "2018-02-24T08:45:21.893Z"
            .parse::<roomer_occupancy::Timestamp>()
            .unwrap()
    );
    assert_eq!(first.direction, Direction::In);
    // Retransmissions (a row equal to the one before) are kept for the backend to dedup.
    let repeats = crossings.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(repeats > 0, "the reference file has exact repeats");
}

#[test]
fn columns_are_found_by_name_and_quoting_does_not_matter() {
    let quoted = temp_csv(
        "\"timestamp\",\"direction\",\"dpu_id\"\n\
         \"2018-02-24T08:45:21.893Z\",\"1\",\"423\"\n\
         \"2018-02-24T14:01:52.470Z\",\"-1\",\"423\"\n",
    );
    let mixed = temp_csv(
        "dpu_id,Timestamp,note,direction\n\
         423,2018-02-24T08:45:21.893Z,\"first, with a comma\",\"1\"\n\
         \"423\",\"2018-02-24T14:01:52.470Z\",,-1\n",
    );

    let quoted = read_csv(quoted.path()).unwrap();
    let mixed = read_csv(mixed.path()).unwrap();
    assert_eq!(quoted.len(), 2);
    assert_eq!(quoted, mixed);
    assert_eq!(mixed[1].direction, Direction::Out);
}

#[test]
fn a_bad_row_is_reported_with_its_line_number() {
    let cases = [
        ("direction 2", "timestamp,direction,dpu_id\n2018-02-24T08:45:21Z,1,423\n2018-02-24T08:46:00Z,1,423\n2018-02-24T08:47:00Z,2,423\n", 4, "direction"),
        ("a date that is not RFC 3339", "timestamp,direction,dpu_id\n2018-02-24T08:45:21Z,1,423\n24/02/2018 08:46,1,423\n", 3, "timestamp"),
        ("a bad DPU id", "timestamp,direction,dpu_id\n2018-02-24T08:45:21Z,1,dpu 7\n", 2, "DPU id"),
        ("a missing field", "timestamp,direction,dpu_id\n2018-02-24T08:45:21Z,1,423\n2018-02-24T08:46:00Z,1\n", 3, "field"),
    ];
    for (what, text, expected_line, mentions) in cases {
        let file = temp_csv(text);
        match read_csv(file.path()) {
            Err(e @ SimError::BadRow { line, .. }) => {
                assert_eq!(line, expected_line, "{what}: {e}");
                assert!(e.to_string().contains(mentions), "{what}: {e}");
                assert!(
                    e.to_string().contains(&format!("line {expected_line}")),
                    "{what}: {e}"
                );
            }
            other => panic!("{what}: expected a bad row, got {other:?}"),
        }
    }
}

#[test]
fn a_file_without_a_needed_column_is_refused() {
    let file = temp_csv("timestamp,dpu_id\n2018-02-24T08:45:21Z,423\n");
    assert!(matches!(
        read_csv(file.path()),
        Err(SimError::MissingColumn {
            column: "direction",
            ..
        })
    ));
}

#[test]
fn a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_csv(&dir.path().join("nope.csv")),
        Err(SimError::Csv { .. })
    ));
}
