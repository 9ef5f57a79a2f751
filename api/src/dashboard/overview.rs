//! `/`: the building at a glance. Every space, as a tree by `parent`, with its count now and,
//! where it has a capacity, how full it is. `live.js` keeps the numbers current from
//! `/api/v1/live`; the page itself is one storage query however many spaces there are.

use super::{error_page, frame, respond, Section};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use roomer_occupancy::SpaceId;
use roomer_storage::{Page, SpaceCount};
use std::collections::{BTreeMap, HashSet};

/// `GET /`
pub async fn page(State(state): State<AppState>) -> Response {
    match state.store.spaces(&Page::all()).await {
        Ok(spaces) => respond(StatusCode::OK, overview(&spaces, !state.access.public_read)),
        Err(e) => error_page(e.into()),
    }
}

/// The spaces under each parent (`None`: the roots), each list in id order.
fn children(spaces: &[SpaceCount]) -> BTreeMap<Option<SpaceId>, Vec<&SpaceCount>> {
    let known: HashSet<SpaceId> = spaces.iter().map(|s| s.space.id).collect();
    let mut tree: BTreeMap<Option<SpaceId>, Vec<&SpaceCount>> = BTreeMap::new();
    for space in spaces {
        // A parent that is not listed makes its child a root rather than hiding it.
        let parent = space.space.parent.filter(|p| known.contains(p));
        tree.entry(parent).or_default().push(space);
    }
    for list in tree.values_mut() {
        list.sort_by_key(|s| s.space.id);
    }
    tree
}

fn overview(spaces: &[SpaceCount], sign_out: bool) -> Markup {
    let tree = children(spaces);
    let body = html! {
        div.heading {
            h1 { "Building" }
            (live_status())
        }
        p.muted { (spaces.len()) " spaces. Counts update as people cross; no need to reload." }
        @if spaces.is_empty() {
            p { "No spaces yet: apply a layout (" code { "roomer layout apply FILE" } ")." }
        } @else {
            (branch(&tree, None, 0))
        }
    };
    frame("Building", Section::Building, sign_out, body)
}

/// The mark that says whether counts are live: `live.js` sets its state and text.
pub(crate) fn live_status() -> Markup {
    html! {
        p #live-status .live-status data-state="connecting" role="status" aria-live="polite" {
            "Connecting to live counts…"
        }
    }
}

/// The spaces under `parent`, and theirs below each.
fn branch(
    tree: &BTreeMap<Option<SpaceId>, Vec<&SpaceCount>>,
    parent: Option<SpaceId>,
    depth: usize,
) -> Markup {
    // Storage refuses parent cycles; the bound keeps a page finite whatever it holds.
    const DEEPEST: usize = 32;
    let Some(list) = tree.get(&parent) else {
        return html! {};
    };
    html! {
        ul.tree role=(if depth == 0 { "tree" } else { "group" }) {
            @for space in list {
                li role="treeitem" {
                    (row(space))
                    @if depth < DEEPEST {
                        (branch(tree, Some(space.space.id), depth + 1))
                    }
                }
            }
        }
    }
}

/// One space: its name (a link to its page), its count and its utilization.
fn row(space: &SpaceCount) -> Markup {
    let id = space.space.id;
    html! {
        div.space data-space-id=(id) {
            a.name href={ "/ui/spaces/" (id) } { (space.space.name) }
            span.count data-live-count aria-label={ "people in " (space.space.name) } { (space.count) }
            (utilization(space))
        }
    }
}

/// A bar and a percentage for a space with a capacity (storage's `utilization`, which the
/// live events also carry); a note for one without.
pub(crate) fn utilization(space: &SpaceCount) -> Markup {
    let (Some(capacity), Some(share)) = (space.space.capacity, space.utilization) else {
        return html! { span.capacity.muted { "no capacity set" } };
    };
    html! {
        span.capacity {
            meter min="0" max=(capacity) high=(u64::from(capacity) * 9 / 10)
                value=(space.count.max(0)) data-live-meter {}
            span data-live-percent { (percent(share)) "%" }
            span.muted { " of " (capacity) }
        }
    }
}

/// A utilization as whole percent, rounded down (as `live.js` writes it).
fn percent(share: f64) -> i64 {
    (share.max(0.0) * 100.0).floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomer_occupancy::Space;

    fn space(id: SpaceId, parent: Option<SpaceId>, count: i64) -> SpaceCount {
        SpaceCount {
            space: Space {
                id,
                name: format!("Space {id}"),
                parent,
                time_zone: None,
                capacity: (id == 3).then_some(40),
                daily_reset: None,
            },
            count,
            utilization: (id == 3).then_some(count as f64 / 40.0),
        }
    }

    #[test]
    fn spaces_nest_under_their_parents_and_orphans_become_roots() {
        let spaces = [
            space(2, Some(1), 4),
            space(1, None, 0),
            space(3, Some(1), 9),
            space(4, Some(99), 1),
        ];
        let tree = children(&spaces);
        let ids = |k| tree[&k].iter().map(|s| s.space.id).collect::<Vec<_>>();
        assert_eq!(ids(None), [1, 4]);
        assert_eq!(ids(Some(1)), [2, 3]);
        let html = overview(&spaces, false).into_string();
        assert!(html.contains(r#"data-space-id="3""#));
        assert!(html.contains("22%"), "9 of 40 is 22%: {html}");
    }
}
