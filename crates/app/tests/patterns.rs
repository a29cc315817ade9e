//! The pattern store keeps everything a node learned across a restart, and nodes stay
//! isolated from each other.

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use mneme_seq::pyfmt::MetaValue;

fn events(spec: &[&[&str]]) -> Vec<Vec<String>> {
    spec.iter()
        .map(|e| e.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

/// Everything observable about a node, as text.
fn snapshot(patterns: &Patterns, node_id: &str, hashes: &[String]) -> String {
    let node = patterns.node(node_id).unwrap();
    let config = Defaults::kato().predict_config();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        hashes.iter().map(|h| node.pattern(h)).collect::<Vec<_>>(),
        node.symbol_stats(),
        node.affinities(),
        node.nearest_vectors(&[1.0, 0.0], 3),
        node.predict(&events(&[&["a"], &["b", "q"]]), &config)
            .predictions,
        node.predict(&events(&[&["a"]]), &config).predictions,
    )
}

#[test]
fn a_node_survives_a_restart_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patterns.redb");
    let (hashes, before) = {
        let patterns =
            Patterns::open(Some(&path), Durability::Immediate, Defaults::kato()).unwrap();
        let node = patterns.node("restart").unwrap();
        let joy = vec![("joy".to_owned(), 0.1), ("fear".to_owned(), 0.2)];
        let meta = vec![
            ("src".to_owned(), MetaValue::Str("doc".into())),
            ("n".to_owned(), MetaValue::Int(3)),
        ];
        let mut hashes = Vec::new();
        for _ in 0..2 {
            hashes.push(
                node.learn(
                    &events(&[&["a"], &["b"], &["c"]]),
                    std::slice::from_ref(&joy),
                    std::slice::from_ref(&meta),
                    5,
                )
                .unwrap()
                .unwrap(),
            );
        }
        hashes.push(
            node.learn(&events(&[&["a"], &["b"], &["d"]]), &[], &[], 5)
                .unwrap()
                .unwrap(),
        );
        hashes.push(
            node.learn(&events(&[&["x", "y"], &["z"]]), &[joy.clone(), joy], &[], 5)
                .unwrap()
                .unwrap(),
        );
        node.index_vectors(&[
            ("VCTR|one".into(), vec![1.0, 0.0]),
            ("VCTR|two".into(), vec![0.0, 1.0]),
        ])
        .unwrap();
        node.finalize_training().unwrap();
        // Another node learns something else: it must not leak into this one.
        patterns
            .node("other")
            .unwrap()
            .learn(&events(&[&["a"], &["zz"]]), &[], &[], 5)
            .unwrap();
        (hashes.clone(), snapshot(&patterns, "restart", &hashes))
    };
    let patterns = Patterns::open(Some(&path), Durability::Immediate, Defaults::kato()).unwrap();
    assert_eq!(snapshot(&patterns, "restart", &hashes), before);
    let node = patterns.node("restart").unwrap();
    assert_eq!(node.pattern(&hashes[0]).unwrap().frequency, 2);
    assert_eq!(node.stats().vectors, 2);
    assert_eq!(patterns.node("other").unwrap().stats().patterns, 1);
}

#[test]
fn a_loaded_node_remembers_the_node_id_that_loaded_it_and_counts_its_uses() {
    let mut defaults = Defaults::kato();
    defaults.service_name = "kato-eu".into();
    let patterns = Patterns::open(None, Durability::Immediate, defaults).unwrap();
    let first = patterns.node_with_usage("probe.2-x").unwrap();
    assert_eq!(first.usage.node_id(), "probe.2-x");
    assert_eq!(first.usage.uses(), 1);
    assert_eq!(first.usage.last_used(), first.usage.loaded_at());
    // Another spelling of the same kb_id is the same node: a use, not a new load.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let again = patterns.node("probe_2_x").unwrap();
    assert!(std::sync::Arc::ptr_eq(&first.node, &again));
    assert_eq!(again.kb_id(), "probe_2_x_kato_eu");
    first.usage.touch();
    let loaded = patterns.loaded();
    assert_eq!(loaded.len(), 1);
    let usage = &loaded[0].usage;
    assert_eq!((usage.node_id(), usage.uses()), ("probe.2-x", 3));
    assert!(usage.last_used() > usage.loaded_at());
}

#[test]
fn reading_a_node_nobody_used_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patterns.redb");
    {
        let patterns =
            Patterns::open(Some(&path), Durability::Immediate, Defaults::kato()).unwrap();
        for i in 0..100 {
            let node = patterns.node_to_read(&format!("probe{i}")).unwrap();
            assert_eq!(node.stats().patterns, 0);
        }
        assert!(patterns.loaded().is_empty(), "no empty node is kept");
        let node = patterns.node("used").unwrap();
        node.learn(&events(&[&["a"], &["b"]]), &[], &[], 5).unwrap();
    }
    // A stored node is loaded and kept by a read, and answers with what it learned.
    let patterns = Patterns::open(Some(&path), Durability::Immediate, Defaults::kato()).unwrap();
    let node = patterns.node_to_read("used").unwrap();
    assert_eq!(node.stats().patterns, 1);
    assert_eq!(patterns.loaded().len(), 1);
    assert!(std::sync::Arc::ptr_eq(
        &node,
        &patterns.node("used").unwrap()
    ));
}
