use super::*;
use crate::model::Doorway;

const EXAMPLE: &str = r#"
[[space]]
id = 1
name = "Space A"

[[space]]
id = 2
name = "Space B"

[[doorway]]
id = 1
name = "Doorway X"
exiting_to = 0
entering_to = 1

[[doorway]]
id = 2
name = "Doorway Z"
exiting_to = 2
entering_to = 1

[[dpu]]
id = "283"
[[dpu.installation]]
doorway = 1
from = "2018-01-01T00:00:00Z"

[[dpu]]
id = "423"
[[dpu.installation]]
doorway = 2
from = "2018-01-01T00:00:00Z"
until = "2018-03-01T00:00:00Z"
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn the_example_building_parses_and_attributes_by_event_time() {
    let layout = Layout::from_toml(EXAMPLE).unwrap();
    assert_eq!(layout.spaces.len(), 2);
    let attribution = Attribution::from_layout(&layout);
    let dpu = DpuId::new("423").unwrap();
    assert_eq!(
        attribution
            .doorway_at(&dpu, ts("2018-02-01T00:00:00Z"))
            .map(|d| d.id),
        Some(2)
    );
    // The installation ended: later events are pending, not attributed.
    assert!(attribution
        .doorway_at(&dpu, ts("2018-03-01T00:00:00Z"))
        .is_none());
    // Before the first installation there is nothing either.
    assert!(attribution
        .doorway_at(&dpu, ts("2017-12-31T23:59:59Z"))
        .is_none());
    assert!(attribution
        .doorway_at(&DpuId::new("999").unwrap(), ts("2018-02-01T00:00:00Z"))
        .is_none());
}

fn doorway(id: DoorwayId, exiting_to: SpaceId, entering_to: SpaceId) -> Doorway {
    Doorway {
        id,
        name: format!("D{id}"),
        exiting_to,
        entering_to,
    }
}

fn space(id: SpaceId) -> Space {
    Space::new(id, format!("S{id}"))
}

#[test]
fn a_doorway_with_one_space_on_both_sides_is_refused() {
    let layout = Layout {
        spaces: vec![space(1)],
        doorways: vec![doorway(1, 1, 1)],
        dpus: vec![],
    };
    assert_eq!(layout.validate(), Err(LayoutError::SameSpaceBothSides(1)));
}

#[test]
fn references_to_undeclared_spaces_and_doorways_are_refused() {
    let layout = Layout {
        spaces: vec![space(1)],
        doorways: vec![doorway(1, 0, 7)],
        dpus: vec![],
    };
    assert_eq!(
        layout.validate(),
        Err(LayoutError::UnknownSpace {
            doorway: 1,
            space: 7
        })
    );
    let dpu = DpuId::new("a").unwrap();
    let layout = Layout {
        spaces: vec![space(1)],
        doorways: vec![doorway(1, 0, 1)],
        dpus: vec![DpuLayout {
            id: dpu.clone(),
            installations: vec![Installation {
                doorway: 9,
                from: ts("2018-01-01T00:00:00Z"),
                until: None,
            }],
        }],
    };
    assert_eq!(
        layout.validate(),
        Err(LayoutError::UnknownDoorway { dpu, doorway: 9 })
    );
}

#[test]
fn overlapping_installations_are_refused() {
    let dpu = DpuId::new("a").unwrap();
    let layout = Layout {
        spaces: vec![space(1)],
        doorways: vec![doorway(1, 0, 1)],
        dpus: vec![DpuLayout {
            id: dpu.clone(),
            installations: vec![
                Installation {
                    doorway: 1,
                    from: ts("2018-02-01T00:00:00Z"),
                    until: None,
                },
                Installation {
                    doorway: 1,
                    from: ts("2018-01-01T00:00:00Z"),
                    until: Some(ts("2018-02-01T00:00:01Z")),
                },
            ],
        }],
    };
    assert!(matches!(
        layout.validate(),
        Err(LayoutError::OverlappingInstallations { .. })
    ));
}

#[test]
fn declaring_outside_or_a_space_twice_is_refused() {
    let layout = Layout {
        spaces: vec![space(0)],
        ..Layout::default()
    };
    assert_eq!(layout.validate(), Err(LayoutError::OutsideDeclared(0)));
    let layout = Layout {
        spaces: vec![space(3), space(3)],
        ..Layout::default()
    };
    assert_eq!(layout.validate(), Err(LayoutError::DuplicateSpace(3)));
}

#[test]
fn unknown_keys_in_the_file_are_errors_not_silently_ignored() {
    let err = Layout::from_toml("[[space]]\nid = 1\nname = \"A\"\ncolour = \"red\"\n").unwrap_err();
    assert!(matches!(err, LayoutError::Parse(msg) if msg.contains("colour")));
}

#[test]
fn spaces_form_a_tree_with_inherited_time_zones() {
    let campus = Space {
        time_zone: Some(chrono_tz::Europe::Paris),
        ..Space::new(10, "Campus")
    };
    let building = Space {
        parent: Some(10),
        ..Space::new(11, "Building")
    };
    let room = Space {
        parent: Some(11),
        capacity: Some(12),
        ..Space::new(12, "Room")
    };
    let tree = vec![campus.clone(), building.clone(), room.clone()];
    assert_eq!(check_space_tree(&tree), Ok(()));
    assert_eq!(effective_time_zone(12, &tree), chrono_tz::Europe::Paris);
    assert_eq!(effective_time_zone(99, &tree), chrono_tz::UTC);

    let orphan = Space {
        parent: Some(77),
        ..Space::new(13, "Orphan")
    };
    assert_eq!(
        check_space_tree(&[orphan]),
        Err(LayoutError::UnknownParent {
            space: 13,
            parent: 77
        })
    );
    let looped = Space {
        parent: Some(12),
        ..campus
    };
    assert_eq!(
        check_space_tree(&[looped, building, room.clone()]),
        Err(LayoutError::ParentCycle(10))
    );
    let empty = Space {
        capacity: Some(0),
        ..room
    };
    assert_eq!(
        check_space_tree(&[empty]),
        Err(LayoutError::ZeroCapacity(12))
    );
}

#[test]
fn names_are_at_most_max_name_characters_in_files_and_edits() {
    let file = |name: &str| {
        Layout::from_toml(&format!(
            "[[space]]\nid = 1\nname = \"{name}\"\n\n\
             [[doorway]]\nid = 2\nname = \"{name}\"\nexiting_to = 0\nentering_to = 1\n"
        ))
    };
    let longest = "é".repeat(MAX_NAME);
    assert!(file(&longest).is_ok());
    let long = format!("{longest}x");
    assert_eq!(
        file(&long).unwrap_err(),
        LayoutError::NameTooLong {
            what: "space",
            id: 1,
            chars: MAX_NAME + 1
        }
    );
    assert_eq!(
        check_name("doorway", 2, &long),
        Err(LayoutError::NameTooLong {
            what: "doorway",
            id: 2,
            chars: MAX_NAME + 1
        })
    );
}

#[test]
fn space_settings_come_from_the_layout_file() {
    let layout = Layout::from_toml(
        r#"
        [[space]]
        id = 1
        name = "HQ"
        time_zone = "Europe/Paris"

        [[space]]
        id = 2
        name = "Meeting room"
        parent = 1
        capacity = 8
        "#,
    )
    .unwrap();
    assert_eq!(layout.spaces[0].time_zone, Some(chrono_tz::Europe::Paris));
    assert_eq!(layout.spaces[1].capacity, Some(8));
    let with_reset =
        Layout::from_toml("[[space]]\nid = 1\nname = \"X\"\ndaily_reset = \"04:00\"\n").unwrap();
    assert_eq!(
        with_reset.spaces[0].daily_reset,
        chrono::NaiveTime::from_hms_opt(4, 0, 0)
    );
    let unknown_zone =
        Layout::from_toml("[[space]]\nid = 1\nname = \"X\"\ntime_zone = \"Mars/Olympus\"\n");
    assert!(matches!(unknown_zone, Err(LayoutError::Parse(_))));
}
