use super::*;
use crate::model::normalize;

fn dpu() -> DpuId {
    DpuId::new("283").unwrap()
}

fn validation() -> Validation {
    Validation {
        now: "2018-03-01T00:00:00Z".parse().unwrap(),
        max_future: TimeDelta::minutes(5),
        oldest: None,
    }
}

fn parse(payload: &str) -> Parsed {
    parse_message(&dpu(), payload.as_bytes(), &validation())
}

fn reasons(parsed: &Parsed) -> Vec<&'static str> {
    parsed.rejected.iter().map(|(_, r)| r.code()).collect()
}

#[test]
fn a_single_object_is_one_crossing() {
    let parsed = parse(r#"{"ts": "2018-02-26T16:06:02.903Z", "direction": 1}"#);
    assert_eq!(parsed.rejected, vec![]);
    assert_eq!(parsed.crossings.len(), 1);
    assert_eq!(parsed.crossings[0].direction, Direction::In);
    assert_eq!(parsed.crossings[0].event_id, None);
}

#[test]
fn offsets_are_converted_to_utc_and_ids_are_kept() {
    let parsed = parse(r#"{"ts": "2018-02-26T17:06:02.903+01:00", "direction": -1, "id": 7}"#);
    let crossing = &parsed.crossings[0];
    assert_eq!(
        crossing.ts,
        "2018-02-26T16:06:02.903Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(crossing.direction, Direction::Out);
    assert_eq!(crossing.event_id, Some(7));
}

#[test]
fn quoted_directions_are_accepted_because_devices_send_them() {
    let parsed = parse(r#"{"ts": "2018-02-26T16:06:02Z", "direction": "-1"}"#);
    assert_eq!(parsed.crossings[0].direction, Direction::Out);
}

#[test]
fn a_bulk_upload_keeps_its_good_elements_and_names_the_bad_ones() {
    let parsed = parse(
        r#"[{"ts": "2018-02-26T16:06:02Z", "direction": 1},
            {"ts": "2018-02-26T16:07:02Z", "direction": 2},
            {"ts": "yesterday", "direction": 1},
            {"direction": 1},
            {"ts": "2018-02-26T16:08:02Z"},
            {"ts": "2018-02-26T16:09:02Z", "direction": 1, "id": -3},
            "hello",
            {"ts": "2018-02-26T16:10:02Z", "direction": -1, "extra": true}]"#,
    );
    assert_eq!(parsed.crossings.len(), 2);
    assert_eq!(
        reasons(&parsed),
        vec![
            "bad_direction",
            "bad_timestamp",
            "missing_field",
            "missing_field",
            "bad_id",
            "not_an_object"
        ]
    );
    let indexes: Vec<_> = parsed.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        indexes,
        vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)]
    );
}

#[test]
fn garbage_is_rejected_with_a_reason() {
    assert_eq!(reasons(&parse("not json")), vec!["not_json"]);
    assert_eq!(reasons(&parse("42")), vec!["not_an_object"]);
    assert_eq!(
        reasons(&parse(r#"{"ts": 5, "direction": 1}"#)),
        vec!["bad_timestamp"]
    );
}

#[test]
fn timestamps_too_far_in_the_future_are_rejected() {
    let ok = parse(r#"{"ts": "2018-03-01T00:04:59Z", "direction": 1}"#);
    assert_eq!(ok.crossings.len(), 1);
    let late = parse(r#"{"ts": "2018-03-01T00:05:01Z", "direction": 1}"#);
    assert_eq!(reasons(&late), vec!["future_timestamp"]);
}

#[test]
fn timestamps_older_than_the_raw_retention_are_rejected() {
    let dpu = DpuId::new("283").unwrap();
    let kept_since = Validation {
        oldest: Some("2018-02-01T00:00:00Z".parse().unwrap()),
        ..validation()
    };
    let body = br#"[{"ts": "2018-01-31T23:59:59Z", "direction": 1},
                    {"ts": "2018-02-01T00:00:00Z", "direction": 1}]"#;
    let parsed = parse_message(&dpu, body, &kept_since);
    assert_eq!(
        parsed.crossings.len(),
        1,
        "the instant itself is still kept"
    );
    assert_eq!(reasons(&parsed), vec!["beyond_retention"]);
    assert_eq!(parsed.rejected[0].0, Some(0));
}

#[test]
fn statuses_are_online_or_offline() {
    assert_eq!(parse_status(b"online"), Ok(true));
    assert_eq!(parse_status(b" OFFLINE\n"), Ok(false));
    assert_eq!(parse_status(b"maybe").unwrap_err().code(), "bad_status");
}

#[test]
fn topics_name_the_dpu() {
    assert_eq!(
        parse_topic("dpus/283/crossings"),
        Ok(Topic::Crossings(dpu()))
    );
    assert_eq!(parse_topic("dpus/283/status"), Ok(Topic::Status(dpu())));
    for bad in [
        "dpus/283/other",
        "dpus/283",
        "dpus//crossings",
        "dpus/28 3/crossings",
        "x/283/crossings",
        "dpus/283/crossings/x",
        "dpus/../crossings",
        "dpus/./status",
    ] {
        assert_eq!(parse_topic(bad).unwrap_err().code(), "bad_topic", "{bad}");
    }
}

#[test]
fn the_http_form_is_validated_like_mqtt() {
    let v = validation();
    assert!(parse_form(&dpu(), "2018-02-26T16:06:02Z", "1", &v).is_ok());
    assert_eq!(
        parse_form(&dpu(), "2018-02-26T16:06:02Z", "0", &v)
            .unwrap_err()
            .code(),
        "bad_direction"
    );
    assert_eq!(
        parse_form(&dpu(), "soon", "1", &v).unwrap_err().code(),
        "bad_timestamp"
    );
}

#[test]
fn an_id_is_an_integer_from_0_to_2_pow_63_minus_1() {
    let parsed = parse(
        r#"[{"ts": "2018-02-26T16:06:02Z", "direction": 1, "id": 0},
            {"ts": "2018-02-26T16:07:02Z", "direction": 1, "id": 9223372036854775807},
            {"ts": "2018-02-26T16:08:02Z", "direction": 1, "id": 9223372036854775808},
            {"ts": "2018-02-26T16:09:02Z", "direction": 1, "id": 1.5},
            {"ts": "2018-02-26T16:10:02Z", "direction": 1, "id": "7"}]"#,
    );
    let ids: Vec<_> = parsed.crossings.iter().map(|c| c.event_id).collect();
    assert_eq!(ids, [Some(0), Some(i64::MAX as u64)]);
    assert_eq!(reasons(&parsed), vec!["bad_id", "bad_id", "bad_id"]);
}

/// Every edge of RFC 3339 lands on one instant at stored precision: a leap second is the
/// first second of the next minute, offsets of ±23:59 and digits beyond the microsecond are
/// folded into UTC microseconds, years 0001 and 9999 are ordinary instants.
#[test]
fn rfc_3339_edges_are_one_instant_at_stored_precision() {
    let lenient = Validation {
        now: "9999-12-31T23:59:59Z".parse().unwrap(),
        max_future: TimeDelta::seconds(1),
        oldest: None,
    };
    let instant = |text: &str| {
        let payload = format!(r#"{{"ts": "{text}", "direction": 1}}"#);
        let parsed = parse_message(&dpu(), payload.as_bytes(), &lenient);
        assert_eq!(parsed.rejected, vec![], "{text}");
        parsed.crossings[0].ts
    };
    let same = [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
        ("2016-12-31T23:59:60.5Z", "2017-01-01T00:00:00.5Z"),
        ("2017-01-01T23:59:00+23:59", "2017-01-01T00:00:00Z"),
        ("2016-12-31T00:01:00-23:59", "2017-01-01T00:00:00Z"),
        (
            "2017-01-01T00:00:00.0000019Z",
            "2017-01-01T00:00:00.000001Z",
        ),
    ];
    for (a, b) in same {
        assert_eq!(instant(a), instant(b), "{a} and {b}");
        assert_eq!(instant(a), normalize(instant(a)), "{a} is normalized");
        assert_eq!(
            instant(a).timestamp_micros(),
            instant(b).timestamp_micros(),
            "{a} and {b} are stored alike"
        );
    }
    assert_eq!(instant("0001-01-01T00:00:00Z").timestamp(), -62_135_596_800);
    assert!(instant("9999-12-31T23:59:59.999999Z") > instant("9999-12-31T23:59:59Z"));
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// RFC 3339 text, well-formed or nearly: leap seconds, any offset, any number of digits.
    fn timestamp_text() -> impl Strategy<Value = String> {
        (
            1i32..=9999,
            1u32..=12,
            1u32..=31,
            0u32..=23,
            0u32..=59,
            0u32..=60,
            "[0-9]{0,12}",
            prop_oneof![
                Just("Z".to_owned()),
                (any::<bool>(), 0u32..=23, 0u32..=59).prop_map(|(east, h, m)| format!(
                    "{}{h:02}:{m:02}",
                    if east { '+' } else { '-' }
                )),
            ],
        )
            .prop_map(|(y, mo, d, h, mi, s, digits, offset)| {
                let fraction = if digits.is_empty() {
                    String::new()
                } else {
                    format!(".{digits}")
                };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{offset}")
            })
    }

    proptest! {
        /// Whatever the text, parsing never panics, and every crossing it yields is already at
        /// stored precision, so equal instants are equal keys in memory and in storage.
        #[test]
        fn any_timestamp_is_refused_or_an_instant_at_stored_precision(
            texts in prop::collection::vec(timestamp_text(), 1..6),
            ids in prop::collection::vec(any::<i64>(), 6),
        ) {
            let lenient = Validation {
                now: "9999-12-31T23:59:59Z".parse().unwrap(),
                max_future: TimeDelta::days(1),
                oldest: None,
            };
            let elements: Vec<String> = texts
                .iter()
                .zip(&ids)
                .map(|(ts, id)| format!(r#"{{"ts": "{ts}", "direction": 1, "id": {id}}}"#))
                .collect();
            let payload = format!("[{}]", elements.join(","));
            let parsed = parse_message(&dpu(), payload.as_bytes(), &lenient);
            prop_assert_eq!(parsed.crossings.len() + parsed.rejected.len(), texts.len());
            for crossing in &parsed.crossings {
                prop_assert_eq!(crossing.ts, normalize(crossing.ts));
                let stored = Timestamp::from_timestamp_micros(crossing.ts.timestamp_micros());
                prop_assert_eq!(Some(crossing.ts), stored);
            }
        }
    }
}
