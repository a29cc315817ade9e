//! The f32 encoder's vectors equal sentence-transformers' own (tests/data/golden.json, produced
//! by tests/data/gen_golden.py) to 1e-4 per component, in one batch and one at a time; the
//! default encoder (bf16 where AMX makes it fast) holds the accuracy gate: cosine >= 0.995 with
//! sentence-transformers' f32 vector for every golden text, on the AMX kernels and on the
//! portable ones alike.

use std::path::PathBuf;

use mneme_embed::{Embedder, Precision, cosine, test_model_dir as model_dir};

struct Case {
    text: String,
    tokens: usize,
    vector: Vec<f32>,
}

fn golden() -> (usize, Vec<Case>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().unwrap().to_owned(),
            tokens: c["tokens"].as_u64().unwrap() as usize,
            vector: c["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
        })
        .collect();
    (json["max_seq_length"].as_u64().unwrap() as usize, cases)
}

fn assert_close(text: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{text:?}: dimension");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-4, "{text:?}: a component differs by {worst}");
}

#[test]
fn matches_sentence_transformers_in_a_batch_and_alone() {
    let embedder = Embedder::load_with(&model_dir(), Precision::F32)
        .unwrap()
        .with_batch_size(5);
    assert_eq!(embedder.kernels(), "candle-f32");
    let (max_seq_length, cases) = golden();
    assert_eq!(embedder.dim(), 384);
    assert_eq!(embedder.max_seq_length(), max_seq_length);
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batch = embedder.embed(&texts).unwrap();
    assert_eq!(batch.len(), cases.len());
    for (case, got) in cases.iter().zip(&batch) {
        assert_eq!(
            embedder.count_tokens(&case.text).unwrap(),
            case.tokens,
            "{:?}",
            case.text
        );
        assert_close(&case.text, got, &case.vector);
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not a unit vector: {norm}");
    }
    // Alone (no padding at all) the answer is the same.
    for case in cases.iter().take(4) {
        let alone = embedder.embed(&[case.text.as_str()]).unwrap();
        assert_close(&case.text, &alone[0], &case.vector);
    }
}

/// The smallest cosine between `embedder`'s vectors and the golden ones, checking each text
/// against the gate and the vectors' unit length; in batches and alone.
fn gate(embedder: &Embedder) -> f32 {
    let (_, cases) = golden();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batch = embedder.embed(&texts).unwrap();
    let mut worst = 1f32;
    for (case, got) in cases.iter().zip(&batch) {
        let alone = &embedder.embed(&[case.text.as_str()]).unwrap()[0];
        for v in [got, alone] {
            let c = cosine(v, &case.vector);
            assert!(
                c >= 0.995,
                "{}: cosine {c} with sentence-transformers' f32 vector for {:?}",
                embedder.kernels(),
                case.text
            );
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "not a unit vector: {norm}");
            worst = worst.min(c);
        }
    }
    worst
}

#[test]
fn the_default_encoder_holds_the_accuracy_gate() {
    let embedder = Embedder::load(&model_dir()).unwrap().with_batch_size(4);
    let worst = gate(&embedder);
    eprintln!("{}: worst cosine {worst}", embedder.kernels());
}

#[test]
fn bf16_holds_the_gate_on_both_kernels_and_they_agree() {
    let portable = Embedder::load_portable_bf16(&model_dir()).unwrap();
    assert_eq!(portable.kernels(), "portable-bf16");
    let worst = gate(&portable);
    eprintln!("portable-bf16: worst cosine {worst}");
    let fast = Embedder::load_with(&model_dir(), Precision::Bf16).unwrap();
    assert_eq!(fast.precision(), Precision::Bf16);
    if fast.kernels() == "portable-bf16" {
        eprintln!("no AMX on this machine: the bf16 encoder ran on the portable kernels only");
        return;
    }
    assert_eq!(fast.kernels(), "amx-bf16");
    gate(&fast);
    // The two kernels differ only in the order of some f32 sums.
    let (_, cases) = golden();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    for ((a, b), text) in fast
        .embed(&texts)
        .unwrap()
        .iter()
        .zip(portable.embed(&texts).unwrap())
        .zip(&texts)
    {
        let c = cosine(a, &b);
        assert!(
            c > 0.9999,
            "AMX and portable kernels disagree on {text:?}: cosine {c}"
        );
    }
}

#[test]
fn precision_settings() {
    assert_eq!(
        Precision::from_setting(Some("f32")).unwrap(),
        Precision::F32
    );
    assert_eq!(
        Precision::from_setting(Some("fp32")).unwrap(),
        Precision::F32
    );
    assert_eq!(
        Precision::from_setting(Some(" bf16")).unwrap(),
        Precision::Bf16
    );
    let auto = Precision::from_setting(None).unwrap();
    assert_eq!(Precision::from_setting(Some("auto")).unwrap(), auto);
    let err = Precision::from_setting(Some("int4"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"int4\"") && err.contains("f32, bf16 or auto"),
        "{err}"
    );
}

#[test]
fn similar_meanings_are_closer() {
    let embedder = Embedder::load(&model_dir()).unwrap();
    let v = embedder
        .embed(&[
            "The cat sits on the mat.",
            "A feline rests on a rug.",
            "Quarterly revenue grew by twelve percent.",
        ])
        .unwrap();
    let near = mneme_embed::cosine(&v[0], &v[1]);
    let far = mneme_embed::cosine(&v[0], &v[2]);
    assert!(near > far + 0.3, "near {near}, far {far}");
}

#[test]
fn bad_folders_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let err = Embedder::load(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("scripts/fetch-model"), "{err}");
    let err = Embedder::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    // A truncated weights file is an error, not a crash.
    let model = model_dir();
    for name in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(model.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
    )
    .unwrap();
    let err = Embedder::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // Garbage configuration.
    std::fs::write(dir.path().join("config.json"), b"{not json").unwrap();
    let err = Embedder::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
}
