//! Scans (cluster mode's unit of replication): a scan made against one index and replayed on
//! another gives the state an ingest of the same files gives, without reading any file.

use std::path::Path;

use mneme_kb::{IngestOptions, KnowledgeBase, NoProgress, Ranking, Scan};

use crate::{doc_ids, ingest, open, search, write_files};

/// Scans `dir` against `scanner`, replays the scan on the scanner and on `replica` (through
/// its bytes, as the log carries it); the scan.
fn replicate(scanner: &KnowledgeBase, replica: &KnowledgeBase, dir: &Path) -> Scan {
    let scan = scanner
        .scan(&[dir.to_path_buf()], IngestOptions::default())
        .unwrap();
    let shipped = Scan::from_bytes(&scan.to_bytes().unwrap()).unwrap();
    scanner.apply_scan(scan.clone(), &NoProgress).unwrap();
    replica.apply_scan(shipped, &NoProgress).unwrap();
    scan
}

fn state(kb: &KnowledgeBase, query: &str) -> (Vec<String>, Vec<String>) {
    let mut ids = kb.doc_ids();
    ids.sort();
    let hits = doc_ids(&search(kb, query, Ranking::Bm25, 10))
        .into_iter()
        .map(str::to_owned)
        .collect();
    (ids, hits)
}

#[test]
fn a_replayed_scan_gives_what_an_ingest_gives_without_reading_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("kb");
    write_files(
        &docs,
        &[
            (
                "audio.md",
                b"# Audio\n\nFast Fourier transforms for audio processing.\n",
            ),
            ("video.md", b"# Video\n\nMotion vectors and codecs.\n"),
            ("notes/todo.txt", b"Remember the Fourier series.\n"),
        ],
    );
    let scanner = open(&tmp.path().join("scanner"));
    let replica = open(&tmp.path().join("replica"));
    let reference = open(&tmp.path().join("reference"));

    let first = replicate(&scanner, &replica, &docs);
    assert!(first.changes());
    assert_eq!(first.files(), 3);
    ingest(&reference, &[&docs]);
    assert_eq!(state(&replica, "fourier"), state(&reference, "fourier"));
    assert_eq!(state(&scanner, "fourier"), state(&reference, "fourier"));

    // Nothing changed: the next scan would change nothing and carries no bytes.
    let idle = scanner
        .scan(std::slice::from_ref(&docs), IngestOptions::default())
        .unwrap();
    assert!(!idle.changes());
    assert!(idle.to_bytes().unwrap().len() < first.to_bytes().unwrap().len());

    // A change, an addition and a removal.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_files(
        &docs,
        &[
            ("audio.md", b"# Audio\n\nWavelets instead of Fourier.\n"),
            ("extra.md", b"# Extra\n\nSpectrograms.\n"),
        ],
    );
    std::fs::remove_file(docs.join("video.md")).unwrap();
    let scan = scanner
        .scan(std::slice::from_ref(&docs), IngestOptions::default())
        .unwrap();
    assert!(scan.changes());
    let shipped = Scan::from_bytes(&scan.to_bytes().unwrap()).unwrap();
    // The replica replays the bytes of the scan, not what the files hold by then.
    write_files(
        &docs,
        &[("extra.md", b"# Extra\n\nChanged after the scan.\n")],
    );
    scanner.apply_scan(scan, &NoProgress).unwrap();
    replica.apply_scan(shipped, &NoProgress).unwrap();
    let (ids, _) = state(&replica, "spectrograms");
    assert_eq!(ids, ["kb/audio.md", "kb/extra.md", "kb/notes/todo.txt"]);
    assert_eq!(
        doc_ids(&search(&replica, "spectrograms", Ranking::Bm25, 10)),
        ["kb/extra.md"]
    );
    assert_eq!(state(&replica, "wavelets"), state(&scanner, "wavelets"));
    assert!(doc_ids(&search(&replica, "motion", Ranking::Bm25, 10)).is_empty());

    // The scanner's next scan sees only the change made after the scan.
    let next = scanner
        .scan(std::slice::from_ref(&docs), IngestOptions::default())
        .unwrap();
    assert!(next.changes());
    replica
        .apply_scan(
            Scan::from_bytes(&next.to_bytes().unwrap()).unwrap(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(
        doc_ids(&search(&replica, "changed", Ranking::Bm25, 10)),
        ["kb/extra.md"]
    );
}

#[test]
fn a_scan_of_another_format_version_is_refused() {
    let mut bytes = Scan::default().to_bytes().unwrap();
    bytes[0] = 99;
    let err = Scan::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("upgrade this node"), "{err}");
    assert!(Scan::from_bytes(&[]).is_err());
}

#[test]
fn a_file_whose_path_is_not_utf8_is_reported_and_the_rest_is_shared() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("kb");
    write_files(&docs, &[("fine.md", b"# Fine\n\nShared across nodes.\n")]);
    let odd = docs.join(std::ffi::OsStr::from_bytes(b"odd-\xff.md"));
    std::fs::write(&odd, b"# Odd\n\nA name in Latin-1.\n").unwrap();
    let scanner = open(&tmp.path().join("scanner"));
    let replica = open(&tmp.path().join("replica"));
    let scan = scanner
        .scan(std::slice::from_ref(&docs), IngestOptions::default())
        .unwrap();
    let (problems, _) = scan.skipped();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, odd);
    assert!(
        problems[0].1.detail.contains("not UTF-8"),
        "{:?}",
        problems[0].1
    );
    let shipped = Scan::from_bytes(&scan.to_bytes().unwrap()).unwrap();
    replica.apply_scan(shipped, &NoProgress).unwrap();
    assert_eq!(replica.doc_ids(), ["kb/fine.md"]);
}
