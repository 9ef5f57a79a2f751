//! A building description: spaces, doorways and where each DPU hung when.
//!
//! A layout file is declarative and self-contained: it names every space and doorway it
//! refers to (Outside, id 0, is implicit), and for every DPU it lists the DPU's whole
//! installation history. Applying the same file twice changes nothing.

use crate::model::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId, Timestamp, OUTSIDE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A whole building, as written in a layout file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    #[serde(default, rename = "space")]
    pub spaces: Vec<Space>,
    #[serde(default, rename = "doorway")]
    pub doorways: Vec<Doorway>,
    #[serde(default, rename = "dpu")]
    pub dpus: Vec<DpuLayout>,
}

/// One DPU and its installation history (replaced as a whole when the layout is applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpuLayout {
    pub id: DpuId,
    #[serde(default, rename = "installation")]
    pub installations: Vec<Installation>,
}

impl DpuLayout {
    /// A DPU that has hung over `doorway` since `from`, and still does.
    pub fn hanging_over(id: DpuId, doorway: DoorwayId, from: Timestamp) -> Self {
        Self {
            id,
            installations: vec![Installation {
                doorway,
                from,
                until: None,
            }],
        }
    }
}

/// Why a layout cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("the layout file is not valid TOML for a layout: {0}")]
    Parse(String),
    #[error("space {0} is Outside, which always exists; do not declare it")]
    OutsideDeclared(SpaceId),
    #[error("space {0} is declared twice")]
    DuplicateSpace(SpaceId),
    #[error("doorway {0} is declared twice")]
    DuplicateDoorway(DoorwayId),
    #[error("DPU {0} is declared twice")]
    DuplicateDpu(DpuId),
    #[error("doorway {doorway} refers to space {space}, which the layout does not declare")]
    UnknownSpace { doorway: DoorwayId, space: SpaceId },
    #[error("doorway {0} has the same space on both sides")]
    SameSpaceBothSides(DoorwayId),
    #[error("space {space} names space {parent} as its parent, which does not exist")]
    UnknownParent { space: SpaceId, parent: SpaceId },
    #[error("space {0} would be its own ancestor")]
    ParentCycle(SpaceId),
    #[error("space {0} has capacity 0; leave it out if the space has none")]
    ZeroCapacity(SpaceId),
    #[error("the name of {what} {id} has {chars} characters; at most {MAX_NAME}")]
    NameTooLong {
        what: &'static str,
        id: i64,
        chars: usize,
    },
    #[error("DPU {dpu} is installed over doorway {doorway}, which the layout does not declare")]
    UnknownDoorway { dpu: DpuId, doorway: DoorwayId },
    #[error("DPU {dpu} has an installation that ends ({until}) before it starts ({from})")]
    EmptyInstallation {
        dpu: DpuId,
        from: Timestamp,
        until: Timestamp,
    },
    #[error("DPU {dpu} has overlapping installations starting at {first} and {second}")]
    OverlappingInstallations {
        dpu: DpuId,
        first: Timestamp,
        second: Timestamp,
    },
}

/// The longest name a space or doorway may have, in characters: dashboards show it whole.
pub const MAX_NAME: usize = 200;

/// Checks a space's or doorway's name against [`MAX_NAME`].
pub fn check_name(what: &'static str, id: i64, name: &str) -> Result<(), LayoutError> {
    let chars = name.chars().count();
    if chars > MAX_NAME {
        return Err(LayoutError::NameTooLong { what, id, chars });
    }
    Ok(())
}

impl Layout {
    /// Parses and validates a layout file.
    pub fn from_toml(text: &str) -> Result<Self, LayoutError> {
        let mut layout: Layout =
            toml::from_str(text).map_err(|e| LayoutError::Parse(e.to_string()))?;
        layout.validate()?;
        layout.normalize();
        Ok(layout)
    }

    /// The layout as a file [`Layout::from_toml`] reads back.
    pub fn to_toml(&self) -> Result<String, LayoutError> {
        toml::to_string(self).map_err(|e| LayoutError::Parse(e.to_string()))
    }

    /// Checks that the layout is self-consistent.
    pub fn validate(&self) -> Result<(), LayoutError> {
        let mut spaces = HashSet::from([OUTSIDE]);
        for space in &self.spaces {
            if space.id == OUTSIDE {
                return Err(LayoutError::OutsideDeclared(space.id));
            }
            if !spaces.insert(space.id) {
                return Err(LayoutError::DuplicateSpace(space.id));
            }
        }
        check_space_tree(&self.spaces)?;
        let mut doorways = HashSet::new();
        for doorway in &self.doorways {
            if !doorways.insert(doorway.id) {
                return Err(LayoutError::DuplicateDoorway(doorway.id));
            }
            check_name("doorway", doorway.id, &doorway.name)?;
            for space in [doorway.exiting_to, doorway.entering_to] {
                if !spaces.contains(&space) {
                    return Err(LayoutError::UnknownSpace {
                        doorway: doorway.id,
                        space,
                    });
                }
            }
            if doorway.exiting_to == doorway.entering_to {
                return Err(LayoutError::SameSpaceBothSides(doorway.id));
            }
        }
        let mut dpus = HashSet::new();
        for dpu in &self.dpus {
            if !dpus.insert(&dpu.id) {
                return Err(LayoutError::DuplicateDpu(dpu.id.clone()));
            }
            validate_history(&dpu.id, &dpu.installations, &doorways)?;
        }
        Ok(())
    }

    /// What applying `newer` on top of `self` leaves: spaces and doorways are created or
    /// updated by id (never deleted), and every DPU `newer` lists gets `newer`'s history.
    pub fn merge(&mut self, newer: &Layout) {
        for space in &newer.spaces {
            match self.spaces.iter_mut().find(|s| s.id == space.id) {
                Some(existing) => *existing = space.clone(),
                None => self.spaces.push(space.clone()),
            }
        }
        for doorway in &newer.doorways {
            match self.doorways.iter_mut().find(|d| d.id == doorway.id) {
                Some(existing) => *existing = doorway.clone(),
                None => self.doorways.push(doorway.clone()),
            }
        }
        for dpu in &newer.dpus {
            match self.dpus.iter_mut().find(|d| d.id == dpu.id) {
                Some(existing) => *existing = dpu.clone(),
                None => self.dpus.push(dpu.clone()),
            }
        }
    }

    /// Sorts installation histories and truncates their bounds to stored precision.
    fn normalize(&mut self) {
        for dpu in &mut self.dpus {
            for inst in &mut dpu.installations {
                inst.from = crate::model::normalize(inst.from);
                inst.until = inst.until.map(crate::model::normalize);
            }
            dpu.installations.sort_by_key(|i| i.from);
        }
    }
}

/// Checks what spaces say about themselves and each other: every parent exists (Outside is
/// nobody's parent), the parent links form no cycle, capacities are positive, names are at
/// most [`MAX_NAME`] characters.
pub fn check_space_tree(spaces: &[Space]) -> Result<(), LayoutError> {
    let parents: std::collections::HashMap<SpaceId, Option<SpaceId>> =
        spaces.iter().map(|s| (s.id, s.parent)).collect();
    for space in spaces {
        if space.capacity == Some(0) {
            return Err(LayoutError::ZeroCapacity(space.id));
        }
        check_name("space", space.id, &space.name)?;
        if let Some(parent) = space.parent {
            if !parents.contains_key(&parent) {
                return Err(LayoutError::UnknownParent {
                    space: space.id,
                    parent,
                });
            }
        }
        // Walk up; more steps than spaces means a cycle.
        let mut at = space.parent;
        for _ in 0..=spaces.len() {
            match at {
                None => break,
                Some(id) if id == space.id => return Err(LayoutError::ParentCycle(space.id)),
                Some(id) => at = parents.get(&id).copied().flatten(),
            }
        }
    }
    Ok(())
}

/// The time zone a space's local-time features use: its own, else its nearest ancestor's,
/// else UTC.
pub fn effective_time_zone(space: SpaceId, spaces: &[Space]) -> chrono_tz::Tz {
    let mut at = Some(space);
    for _ in 0..=spaces.len() {
        let Some(found) = at.and_then(|id| spaces.iter().find(|s| s.id == id)) else {
            break;
        };
        if let Some(tz) = found.time_zone {
            return tz;
        }
        at = found.parent;
    }
    chrono_tz::UTC
}

/// Checks one DPU's installation history against the doorways that exist, and returns it
/// as stored: sorted by start, bounds truncated to stored precision.
pub fn checked_history(
    dpu: &DpuId,
    installations: &[Installation],
    doorways: &HashSet<DoorwayId>,
) -> Result<Vec<Installation>, LayoutError> {
    let history = normalized_history(installations);
    validate_history(dpu, &history, doorways)?;
    Ok(history)
}

/// An installation history as stored: sorted by start, bounds at stored precision.
pub fn normalized_history(installations: &[Installation]) -> Vec<Installation> {
    let mut history: Vec<Installation> = installations
        .iter()
        .map(|inst| Installation {
            doorway: inst.doorway,
            from: crate::model::normalize(inst.from),
            until: inst.until.map(crate::model::normalize),
        })
        .collect();
    history.sort_by_key(|i| i.from);
    history
}

fn validate_history(
    dpu: &DpuId,
    installations: &[Installation],
    doorways: &HashSet<DoorwayId>,
) -> Result<(), LayoutError> {
    let mut sorted: Vec<&Installation> = installations.iter().collect();
    sorted.sort_by_key(|i| i.from);
    for inst in &sorted {
        if !doorways.contains(&inst.doorway) {
            return Err(LayoutError::UnknownDoorway {
                dpu: dpu.clone(),
                doorway: inst.doorway,
            });
        }
        if let Some(until) = inst.until {
            if until <= inst.from {
                return Err(LayoutError::EmptyInstallation {
                    dpu: dpu.clone(),
                    from: inst.from,
                    until,
                });
            }
        }
    }
    for pair in sorted.windows(2) {
        if pair[0].until.is_none_or(|until| until > pair[1].from) {
            return Err(LayoutError::OverlappingInstallations {
                dpu: dpu.clone(),
                first: pair[0].from,
                second: pair[1].from,
            });
        }
    }
    Ok(())
}

/// Answers "which doorway did this DPU hang over at time T, and what are its sides".
#[derive(Clone, Debug, Default)]
pub struct Attribution {
    doorways: HashMap<DoorwayId, Doorway>,
    histories: BTreeMap<DpuId, Vec<Installation>>,
}

impl Attribution {
    pub fn new(
        doorways: impl IntoIterator<Item = Doorway>,
        histories: impl IntoIterator<Item = (DpuId, Vec<Installation>)>,
    ) -> Self {
        let mut histories: BTreeMap<DpuId, Vec<Installation>> = histories.into_iter().collect();
        for history in histories.values_mut() {
            history.sort_by_key(|i| i.from);
        }
        Self {
            doorways: doorways.into_iter().map(|d| (d.id, d)).collect(),
            histories,
        }
    }

    /// From rows of (DPU, one of its installations, that installation's doorway), as a
    /// store reads them in one join.
    pub fn from_installed(rows: impl IntoIterator<Item = (DpuId, Installation, Doorway)>) -> Self {
        let mut doorways = BTreeMap::new();
        let mut histories: BTreeMap<DpuId, Vec<Installation>> = BTreeMap::new();
        for (dpu, installation, doorway) in rows {
            histories.entry(dpu).or_default().push(installation);
            doorways.insert(doorway.id, doorway);
        }
        Self::new(doorways.into_values(), histories)
    }

    pub fn from_layout(layout: &Layout) -> Self {
        Self::new(
            layout.doorways.iter().cloned(),
            layout
                .dpus
                .iter()
                .map(|d| (d.id.clone(), d.installations.clone())),
        )
    }

    /// The doorway `dpu` hung over at `ts`, if any installation covers it.
    pub fn doorway_at(&self, dpu: &DpuId, ts: Timestamp) -> Option<&Doorway> {
        let history = self.histories.get(dpu)?;
        // The last installation starting at or before ts is the only candidate.
        let idx = history.partition_point(|i| i.from <= ts);
        let inst = history[..idx].last()?;
        inst.covers(ts)
            .then(|| self.doorways.get(&inst.doorway))
            .flatten()
    }

    pub fn doorway(&self, id: DoorwayId) -> Option<&Doorway> {
        self.doorways.get(&id)
    }
}

#[cfg(test)]
mod tests;
