use super::*;

#[test]
fn the_specs_live_examples() {
    let cases: &[(&[&[&str]], &str)] = &[
        (
            &[&["beginning"], &["middle"], &["end"]],
            "63b6f94454dab80c6ace4a849bd99c0979c21b8b",
        ),
        (
            &[&["a"], &["b"], &["c"]],
            "b98534b32c1d7489d4ce1a48724aa65aeecbdba9",
        ),
        (
            &[&["a"], &["b"], &["d"]],
            "71c480f96c9bdedff8c44612fae4bb9d6e76ecd8",
        ),
        (
            &[&["x", "y"], &["z"]],
            "13d4886d524a11ce8d24dc20b14ae3e6aaf47b49",
        ),
    ];
    for (events, hash) in cases {
        let events: Vec<Vec<&str>> = events.iter().map(|e| e.to_vec()).collect();
        assert_eq!(pattern_hash(&events), *hash);
    }
}

#[test]
fn quotes_and_escapes_follow_cpython() {
    let repr = |s: &str| python_repr(&[vec![s]]);
    assert_eq!(repr("it's"), r#"[["it's"]]"#);
    assert_eq!(repr(r#"say "hi""#), r#"[['say "hi"']]"#);
    assert_eq!(repr(r#"both ' and ""#), r#"[['both \' and "']]"#);
    assert_eq!(repr("a\\b\tc\nd\re"), r"[['a\\b\tc\nd\re']]");
    assert_eq!(
        repr("\u{0}\u{1f}\u{7f}\u{a0}\u{ad}"),
        r"[['\x00\x1f\x7f\xa0\xad']]"
    );
    assert_eq!(repr("zw\u{200b}sp \u{2028}"), r"[['zw\u200bsp \u2028']]");
    assert_eq!(repr("日本語 é 🎉"), "[['日本語 é 🎉']]");
    assert_eq!(repr("\u{e000}\u{10ffff}"), r"[['\ue000\U0010ffff']]");
    assert_eq!(python_repr::<&str>(&[]), "[]");
    assert_eq!(python_repr(&[Vec::<&str>::new(), vec![""]]), "[[], ['']]");
}

/// Every event list of ../shared/conformance/python-repr-sha1.json (CPython 3.11).
#[test]
fn every_recorded_python_repr_and_sha1() {
    let cases = load("python-repr-sha1.json");
    assert!(cases.len() >= 90);
    for case in cases {
        let events: Vec<Vec<String>> = serde_json::from_value(case["events"].clone()).unwrap();
        assert_eq!(
            python_repr(&events),
            case["repr"].as_str().unwrap(),
            "{events:?}"
        );
        assert_eq!(pattern_hash(&events), case["sha1"].as_str().unwrap());
    }
}

/// Every vector of ../shared/conformance/numpy-vector-names.json (numpy 2.4).
#[test]
fn every_recorded_numpy_vector_name() {
    let cases = load("numpy-vector-names.json");
    assert!(cases.len() >= 60);
    let mut failures = Vec::new();
    for case in cases {
        let vector: Vec<f64> = case["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v.as_str() {
                Some("nan") => f64::NAN,
                Some("inf") => f64::INFINITY,
                Some("-inf") => f64::NEG_INFINITY,
                Some(other) => panic!("unexpected {other}"),
                None => v.as_f64().unwrap(),
            })
            .collect();
        let expected = case["numpy_str"].as_str().unwrap();
        let actual = numpy_str(&vector);
        if actual != expected {
            failures.push(format!(
                "{:?}\n  numpy: {expected:?}\n  mneme: {actual:?}",
                &vector[..vector.len().min(8)]
            ));
        } else {
            assert_eq!(vector_name(&vector), case["name"].as_str().unwrap());
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn load(file: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/kato")
        .join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}
