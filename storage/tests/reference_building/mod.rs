//! The building the reference data was recorded in, and the recording, for tests that want
//! real data (the CSV is read from `../shared/data` beside the checkout).

#![allow(dead_code)] // Each test binary uses its own subset.

use roomer_occupancy::{Crossing, Layout};
use roomer_storage::Store;
use std::path::Path;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn layout() -> Layout {
    let text = std::fs::read_to_string(workspace().join("examples/reference-building.toml"))
        .expect("the example layout");
    Layout::from_toml(&text).expect("a valid layout")
}

/// Applies the building to `store`.
pub async fn apply(store: &dyn Store) {
    store.apply_layout(&layout()).await.unwrap();
}

/// Every row of `dpu_data.csv`, repeats included.
pub fn crossings() -> Vec<Crossing> {
    roomer_simulator::read_csv(&workspace().join("../shared/data/dpu_data.csv"))
        .expect("../shared/data/dpu_data.csv beside the checkout")
}
