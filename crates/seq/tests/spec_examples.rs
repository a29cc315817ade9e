//! The worked examples of ../shared/specs/kato.md (§3.3.3, §3.3.4, §3.3.5), to the last digit.

use mneme_seq::config::Defaults;
use mneme_seq::node::Node;
use mneme_seq::predict::{FullPrediction, Prediction};

fn events(spec: &[&[&str]]) -> Vec<Vec<String>> {
    spec.iter()
        .map(|e| e.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

fn texts(symbols: &[mneme_seq::types::Symbol]) -> Vec<&str> {
    symbols.iter().map(|s| &**s).collect()
}

fn ev(events: &[Vec<mneme_seq::types::Symbol>]) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| e.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn learn(node: &Node, spec: &[&[&str]]) -> String {
    node.learn(&events(spec), &[], &[], 5).unwrap().unwrap()
}

fn full(prediction: &Prediction) -> &FullPrediction {
    match prediction {
        Prediction::Full(p) => p,
        Prediction::Single(_) => panic!("expected a full-path prediction"),
    }
}

#[test]
fn live_example_of_the_ensemble_metrics() {
    let node = Node::in_memory("ex_kato");
    let p1 = learn(&node, &[&["a"], &["b"], &["c"]]);
    learn(&node, &[&["a"], &["b"], &["c"]]);
    let p2 = learn(&node, &[&["a"], &["b"], &["d"]]);
    learn(&node, &[&["x", "y"], &["z"]]);
    let set = node.predict(
        &events(&[&["a"], &["b", "q"]]),
        &Defaults::kato().predict_config(),
    );
    assert_eq!(set.predictions.len(), 2, "P3 is below the threshold");
    let by_name =
        |name: &str| full(set.predictions.iter().find(|p| p.name() == name).unwrap()).clone();
    for (name, frequency, confluence, probability) in [
        (&p2, 1, 0.18518518518518517, 1.0 / 3.0),
        (&p1, 2, 0.37037037037037035, 2.0 / 3.0),
    ] {
        let p = by_name(name);
        assert_eq!(p.frequency, frequency);
        assert_eq!(texts(&p.matches), ["a", "b"]);
        assert_eq!(ev(&p.present), events(&[&["a"], &["b"]]));
        assert_eq!(ev(&p.extras), events(&[&[], &["q"]]));
        assert_eq!(ev(&p.missing), events(&[&[], &[]]));
        assert_eq!(p.metrics.similarity, 0.6666666666666665);
        assert_eq!(
            (
                p.metrics.evidence,
                p.metrics.confidence,
                p.metrics.snr,
                p.metrics.fragmentation
            ),
            (2.0 / 3.0, 1.0, 0.6, 0.0)
        );
        assert_eq!(
            (
                p.metrics.entropy,
                p.metrics.normalized_entropy,
                p.metrics.global_normalized_entropy
            ),
            (1.0, 0.3562071871080222, 0.27782379592740997)
        );
        assert_eq!(p.metrics.itfdf_similarity, 1.0);
        assert_eq!(p.metrics.confluence, confluence);
        assert_eq!(p.metrics.tfidf_score, 0.792481250360578);
        assert_eq!(p.metrics.pattern_probability, probability);
        assert_eq!(p.metrics.predictive_information, 0.6666666666666665);
        assert_eq!(
            (p.metrics.bayesian_prior, p.metrics.bayesian_likelihood),
            (probability, 0.6666666666666665)
        );
        assert_eq!(p.metrics.potential, 3.0);
    }
    let futures: Vec<_> = set
        .future_potentials
        .iter()
        .map(|f| {
            (
                ev(&f.future),
                f.supporting_patterns,
                f.total_weighted_frequency,
            )
        })
        .collect();
    assert_eq!(
        futures,
        [
            (events(&[&["c"]]), 1, 1.333333333333333),
            (events(&[&["d"]]), 1, 0.6666666666666665)
        ]
    );
}

#[test]
fn regions_of_the_test_suite_examples() {
    let node = Node::in_memory("regions_kato");
    let config = Defaults::kato().predict_config();
    let check = |learned: &[&[&str]],
                 stm: &[&[&str]],
                 past: &[&[&str]],
                 present: &[&[&str]],
                 future: &[&[&str]],
                 missing: &[&[&str]],
                 extras: &[&[&str]]| {
        node.clear().unwrap();
        learn(&node, learned);
        let set = node.predict(&events(stm), &config);
        let p = full(&set.predictions[0]);
        assert_eq!(
            (ev(&p.past), ev(&p.present), ev(&p.future)),
            (events(past), events(present), events(future)),
            "{learned:?} / {stm:?}"
        );
        assert_eq!(
            (ev(&p.missing), ev(&p.extras)),
            (events(missing), events(extras))
        );
        p.clone()
    };
    let p = check(
        &[&["beginning"], &["middle"], &["end"]],
        &[&["middle"], &["end"]],
        &[&["beginning"]],
        &[&["middle"], &["end"]],
        &[],
        &[&[], &[]],
        &[&[], &[]],
    );
    assert_eq!(
        (
            p.metrics.similarity,
            p.metrics.evidence,
            p.metrics.confidence,
            p.metrics.snr,
            p.metrics.fragmentation
        ),
        (0.8, 2.0 / 3.0, 1.0, 1.0, 0.0)
    );
    check(
        &[&["pred1", "pred2"], &["pred3"]],
        &[&["pred1"], &["pred2"]],
        &[],
        &[&["pred1", "pred2"]],
        &[&["pred3"]],
        &[&[]],
        &[&[], &[]],
    );
    check(
        &[&["a", "b"], &["c", "d"]],
        &[&["a", "x"], &["c", "y"]],
        &[],
        &[&["a", "b"], &["c", "d"]],
        &[],
        &[&["b"], &["d"]],
        &[&["x"], &["y"]],
    );
    check(
        &[&["begin", "start"], &["middle"], &["end"]],
        &[&["begin"], &["middle"]],
        &[],
        &[&["begin", "start"], &["middle"]],
        &[&["end"]],
        &[&["start"], &[]],
        &[&[], &[]],
    );
    // The live move-fix example: [[b,x],[b,c]] against [[b],[c]].
    let p = check(
        &[&["b", "x"], &["b", "c"]],
        &[&["b"], &["c"]],
        &[],
        &[&["b", "x"], &["b", "c"]],
        &[],
        &[&["x"], &[]],
        &[&[], &[]],
    );
    assert_eq!(
        (p.metrics.confidence, p.metrics.similarity),
        (0.5, 0.6666666666666665)
    );
}

#[test]
fn live_example_of_the_single_symbol_path() {
    let node = Node::in_memory("single_kato");
    let emotive = vec![("e".to_owned(), 1.0)];
    node.learn(&events(&[&["a"], &["b"], &["c"]]), &[emotive], &[], 5)
        .unwrap();
    let set = node.predict(&events(&[&["a"]]), &Defaults::kato().predict_config());
    let Prediction::Single(p) = &set.predictions[0] else {
        panic!("expected the single-symbol path")
    };
    assert_eq!(p.name, "b98534b32c1d7489d4ce1a48724aa65aeecbdba9");
    assert_eq!(texts(&p.future), ["b", "c"]);
    assert_eq!(
        (
            p.similarity,
            p.evidence,
            p.confidence,
            p.snr,
            p.fragmentation
        ),
        (0.5, 0.3333333333333333, 1.0, 1.0, 0)
    );
    assert_eq!(p.potential, 2.333333333333333);
    assert_eq!(p.emotives, [("e".to_owned(), 1.0)]);
}

#[test]
fn learned_vectors_join_later_events_as_their_nearest_symbols() {
    use mneme_seq::name::vector_name;
    use mneme_seq::session::{ObserveConfig, Session};
    use mneme_seq::types::Observation;
    let node = Node::in_memory("vectors_kato");
    let defaults = Defaults::kato();
    let config = ObserveConfig::from_defaults(&defaults);
    let predict = defaults.predict_config();
    let mut session = Session::default();
    let observe = |session: &mut Session, strings: &[&str], vector: Vec<f64>| {
        let observation = Observation {
            strings: strings.iter().map(|s| (*s).to_owned()).collect(),
            vectors: vec![vector],
            ..Observation::default()
        };
        session.observe(&node, &observation, &config, &|n, stm| {
            n.defer_predict(stm, &predict)
        })
    };
    // KATO's test_threshold_multimodal: after learning two vectors, each later event holds
    // both of their names beside its own.
    observe(&mut session, &["a"], vec![1.0, 0.0]).unwrap();
    observe(&mut session, &["b"], vec![0.0, 1.0]).unwrap();
    session.learn(&node, 5).unwrap().unwrap();
    observe(&mut session, &["c"], vec![0.9, 0.1]).unwrap();
    let mut expected = vec![
        vector_name(&[0.9, 0.1]),
        vector_name(&[1.0, 0.0]),
        vector_name(&[0.0, 1.0]),
    ];
    expected.sort();
    expected.push("c".into());
    assert_eq!(session.stm[0], expected);
    // The node's dimension is fixed by its first vector.
    let err = observe(&mut session, &["d"], vec![1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector dimension mismatch: expected 2, got 3"
    );
    assert_eq!(
        session.stm.len(),
        1,
        "the rejected observation changed nothing"
    );
}

#[test]
fn a_refused_vector_batch_leaves_the_node_as_it_was() {
    let node = Node::in_memory("refused_kato");
    node.index_vectors(&[("VCTR|a".to_owned(), vec![1.0, 0.0, 0.0])])
        .unwrap();
    let version = node.version();
    let refused = node.index_vectors(&[
        ("VCTR|b".to_owned(), vec![0.0, 1.0, 0.0]),
        ("VCTR|c".to_owned(), vec![1.0, 1.0]),
    ]);
    let Err(mneme_seq::error::Error::Vector(err)) = refused else {
        panic!("a vector of another dimension is refused: {refused:?}");
    };
    assert_eq!(
        (err.expected, err.actual, err.vector_name.as_deref()),
        (3, 2, Some("VCTR|c"))
    );
    assert_eq!(
        node.version(),
        version,
        "a refused batch does not move the version"
    );
    assert_eq!(node.stats().vectors, 1, "nor adds its good vectors");
    assert_eq!(node.nearest_vectors(&[0.0, 1.0, 0.0], 3), ["VCTR|a"]);
}

/// Confluence's product `10 ** Σ log10 P(s)` is summed in KATO's order: the present's symbols
/// as they stand in the pattern (here `d, c, b, a`), not sorted. With these symbol
/// probabilities (pmf 4, 2, 2, 1 of 6 patterns) the two orders differ in the last bit; the
/// expected values were computed with Python's `math.log10` and `**`, as KATO does.
#[test]
fn confluence_sums_the_logs_in_katos_order_to_the_last_bit() {
    let node = Node::in_memory("confluence_kato");
    let target = learn(&node, &[&["d"], &["c"], &["b"], &["a"]]);
    for filler in [
        &[&["b"][..], &["f1"]][..],
        &[&["c"], &["f2"]],
        &[&["d"], &["f3"]],
        &[&["d"], &["f4"]],
        &[&["d"], &["f5"]],
    ] {
        learn(&node, filler);
    }
    let set = node.predict(
        &events(&[&["d"], &["c"], &["b"], &["a"]]),
        &Defaults::kato().predict_config(),
    );
    let p = full(set.predictions.iter().find(|p| p.name() == target).unwrap());
    assert_eq!(ev(&p.present), events(&[&["d"], &["c"], &["b"], &["a"]]));
    // Python: (1/6) * (1 - 10 ** (log10(4/6) + log10(2/6) + log10(2/6) + log10(1/6)))
    let katos = 0.16460905349794236_f64;
    // The same sum over the sorted symbols (a, b, c, d) would give 0.1646090534979424.
    assert_ne!(katos.to_bits(), 0.1646090534979424_f64.to_bits());
    assert_eq!(
        p.metrics.confluence.to_bits(),
        katos.to_bits(),
        "{}",
        p.metrics.confluence
    );
}
