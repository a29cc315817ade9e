//! Ingest: incremental runs, removals, bad input, walks and settings changes.

use std::path::Path;

use mneme_kb::convert::ProblemKind;
use mneme_kb::{
    ChunkConfig, ErrorKind, IngestOptions, KnowledgeBase, LinkPolicy, NoProgress, Ranking,
};

use crate::{config, doc_ids, ingest, open, search, write_files};

fn problems(report: &mneme_kb::IngestReport) -> Vec<(String, ProblemKind)> {
    report
        .problems
        .iter()
        .map(|(path, problem)| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                problem.kind,
            )
        })
        .collect()
}

#[test]
fn second_run_reads_only_changed_files_and_removes_deleted_ones() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(
        &docs,
        &[
            ("a.md", b"# A\n\nalpha words"),
            ("b.md", b"# B\n\nbravo words"),
            ("sub/c.txt", b"charlie words"),
        ],
    );
    let kb = open(&work.path().join("index"));
    let first = ingest(&kb, &[&docs]);
    assert_eq!((first.files, first.added, first.generation), (3, 3, 1));
    assert_eq!(kb.document("docs/sub/c.txt").unwrap().title, "c");

    let again = ingest(&kb, &[&docs]);
    assert_eq!(
        (
            again.unchanged,
            again.bytes_read,
            again.committed,
            again.generation
        ),
        (3, 0, false, 1)
    );

    std::fs::write(docs.join("a.md"), "# A\n\nalpha changed words").unwrap();
    std::fs::remove_file(docs.join("b.md")).unwrap();
    write_files(&docs, &[("d.md", b"delta words")]);
    let third = ingest(&kb, &[&docs]);
    assert_eq!(
        (third.added, third.updated, third.removed, third.unchanged),
        (1, 1, 1, 1)
    );
    assert_eq!(third.generation, 2);
    assert_eq!(
        third.bytes_read,
        "# A\n\nalpha changed words".len() as u64 + "delta words".len() as u64
    );
    assert_eq!(
        doc_ids(&search(&kb, "changed", Ranking::Bm25, 10)),
        ["docs/a.md"]
    );
    assert!(search(&kb, "bravo", Ranking::Bm25, 10).hits.is_empty());
    assert_eq!(kb.stats().documents, 3);
}

#[test]
fn touching_a_file_without_changing_it_reindexes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("a.md", b"alpha")]);
    let kb = open(&work.path().join("index"));
    ingest(&kb, &[&docs]);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(docs.join("a.md"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let report = ingest(&kb, &[&docs]);
    assert_eq!(
        (report.unchanged, report.updated, report.chunks_written),
        (1, 0, 0)
    );
    assert_eq!(
        report.bytes_read, 5,
        "the file was read to compare its content"
    );
    let report = ingest(&kb, &[&docs]);
    assert_eq!(
        report.bytes_read, 0,
        "the new modification time was recorded"
    );
}

#[test]
fn bad_files_are_reported_with_a_reason_and_the_rest_is_ingested() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let mut big = b"word ".repeat(300_000);
    big.push(b'\n');
    write_files(
        &docs,
        &[
            ("good.md", b"# Good\n\nfine content"),
            ("binary.txt", b"abc\0\x01\x02 binary"),
            ("empty.md", b""),
            ("blank.md", b"   \n\n  "),
            ("latin1.txt", b"caf\xe9 au lait"),
            (
                "broken.pdf",
                b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\ngarbage without xref",
            ),
            ("notpdf.pdf", b"just text pretending"),
            ("broken.docx", b"PK\x03\x04 not really a zip"),
            ("big.txt", &big),
            ("image.png", b"\x89PNG\r\n"),
        ],
    );
    // A zip without word/document.xml.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("hello.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"hi").unwrap();
    std::fs::write(docs.join("nodoc.docx"), zip.finish().unwrap().into_inner()).unwrap();
    std::os::unix::fs::symlink(docs.join("missing-target.md"), docs.join("dangling.md")).unwrap();

    let kb = open(&work.path().join("index"));
    let report = ingest(&kb, &[&docs]);
    let mut found = problems(&report);
    found.sort();
    assert_eq!(
        found,
        [
            ("big.txt".to_owned(), ProblemKind::TooLarge),
            ("binary.txt".to_owned(), ProblemKind::Binary),
            ("blank.md".to_owned(), ProblemKind::Empty),
            ("broken.docx".to_owned(), ProblemKind::Corrupt),
            ("broken.pdf".to_owned(), ProblemKind::Corrupt),
            ("dangling.md".to_owned(), ProblemKind::Unreadable),
            ("empty.md".to_owned(), ProblemKind::Empty),
            ("latin1.txt".to_owned(), ProblemKind::InvalidUtf8),
            ("nodoc.docx".to_owned(), ProblemKind::Corrupt),
            ("notpdf.pdf".to_owned(), ProblemKind::Corrupt),
        ]
    );
    assert!(report.is_partial());
    assert_eq!(report.ignored, 1, "image.png is not a kind mneme ingests");
    assert_eq!(report.documents, 1);
    assert_eq!(
        doc_ids(&search(&kb, "fine", Ranking::Bm25, 10)),
        ["docs/good.md"]
    );
    let latin1 = report
        .problems
        .iter()
        .find(|(p, _)| p.ends_with("latin1.txt"))
        .unwrap();
    assert_eq!(latin1.1.detail, "invalid UTF-8 at byte 3");
}

#[test]
fn a_file_that_turns_bad_keeps_its_last_good_version() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("a.txt", b"original words")]);
    let kb = open(&work.path().join("index"));
    ingest(&kb, &[&docs]);
    std::fs::write(docs.join("a.txt"), b"now \xff\xfe broken").unwrap();
    let report = ingest(&kb, &[&docs]);
    assert_eq!(
        problems(&report),
        [("a.txt".to_owned(), ProblemKind::InvalidUtf8)]
    );
    assert_eq!(
        doc_ids(&search(&kb, "original", Ranking::Bm25, 10)),
        ["docs/a.txt"]
    );
    // Fixed again: picked up on the next run.
    std::fs::write(docs.join("a.txt"), b"repaired words").unwrap();
    let report = ingest(&kb, &[&docs]);
    assert_eq!(report.updated, 1);
    assert!(search(&kb, "original", Ranking::Bm25, 10).hits.is_empty());
}

#[test]
fn a_missing_path_is_an_error_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("a.md", b"alpha")]);
    let kb = open(&work.path().join("index"));
    ingest(&kb, &[&docs]);
    let missing = work.path().join("nope");
    let err = kb
        .ingest(
            &[docs.clone(), missing.clone()],
            IngestOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingPath);
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", missing.display())
    );
    assert_eq!((kb.generation(), kb.stats().documents), (1, 1));
}

#[test]
fn symlink_loops_end_and_linked_directories_are_walked_once() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let shared = work.path().join("shared");
    write_files(&docs, &[("a/one.md", b"one")]);
    write_files(&shared, &[("two.md", b"two")]);
    std::os::unix::fs::symlink(&docs, docs.join("a/loop")).unwrap();
    std::os::unix::fs::symlink(&shared, docs.join("linked")).unwrap();
    std::os::unix::fs::symlink(&shared, docs.join("linked-again")).unwrap();
    write_files(&docs, &[(".git/config.md", b"hidden")]);
    let kb = open(&work.path().join("index"));
    // `shared` lies outside `docs`: followed only when every link is.
    let options = IngestOptions {
        links: LinkPolicy::Any,
        ..IngestOptions::default()
    };
    let report = kb
        .ingest(std::slice::from_ref(&docs), options, &NoProgress)
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut ids: Vec<String> = ["one", "two"]
        .iter()
        .flat_map(|q| {
            search(&kb, q, Ranking::Bm25, 10)
                .hits
                .into_iter()
                .map(|h| h.doc_id)
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["docs/a/one.md", "docs/linked/two.md"]);
}

/// The reliability probe: `kb/link.md → /etc/passwd` was served by the start-up scan while the
/// API refused the same file.
#[test]
fn links_that_leave_the_knowledge_dirs_are_not_followed_by_default() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let secret = work.path().join("secret");
    write_files(
        &docs,
        &[("a.md", b"alpha inside"), ("sub/b.md", b"bravo inside")],
    );
    write_files(
        &secret,
        &[
            ("passwd.md", b"root secretword"),
            ("dir/c.md", b"secretword two"),
        ],
    );
    std::os::unix::fs::symlink(secret.join("passwd.md"), docs.join("link.md")).unwrap();
    std::os::unix::fs::symlink(secret.join("dir"), docs.join("linked-dir")).unwrap();
    // Links that stay inside are followed.
    std::os::unix::fs::symlink(docs.join("sub/b.md"), docs.join("alias.md")).unwrap();
    let kb = open(&work.path().join("index"));
    let report = ingest(&kb, &[&docs]);
    let mut refused = problems(&report);
    refused.sort();
    assert_eq!(
        refused,
        [
            ("link.md".to_owned(), ProblemKind::LinkOutside),
            ("linked-dir".to_owned(), ProblemKind::LinkOutside),
        ]
    );
    assert!(
        report.problems[0]
            .1
            .detail
            .contains("kb.follow_external_links")
    );
    assert!(search(&kb, "secretword", Ranking::Bm25, 10).hits.is_empty());
    assert_eq!(search(&kb, "bravo", Ranking::Bm25, 10).hits.len(), 2);

    // Configured otherwise, they are followed.
    let options = IngestOptions {
        links: LinkPolicy::Any,
        ..IngestOptions::default()
    };
    let report = kb
        .ingest(std::slice::from_ref(&docs), options, &NoProgress)
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(search(&kb, "secretword", Ranking::Bm25, 10).hits.len(), 2);
}

#[test]
fn a_single_file_and_a_second_root_are_ingested_beside_each_other() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        work.path(),
        &[
            ("one/a.md", b"alpha"),
            ("two/b.md", b"bravo"),
            ("loose/c.md", b"charlie"),
        ],
    );
    let kb = open(&work.path().join("index"));
    ingest(&kb, &[&work.path().join("one")]);
    ingest(&kb, &[&work.path().join("two")]);
    ingest(&kb, &[&work.path().join("loose/c.md")]);
    assert_eq!(
        kb.stats().documents,
        3,
        "ingesting one root does not remove another's documents"
    );
    assert_eq!(
        doc_ids(&search(&kb, "charlie", Ranking::Bm25, 10)),
        ["loose/c.md"]
    );
    std::fs::remove_file(work.path().join("two/b.md")).unwrap();
    let report = ingest(&kb, &[&work.path().join("two")]);
    assert_eq!((report.removed, report.documents), (1, 2));
}

#[test]
fn duplicate_doc_ids_across_roots_are_reported() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        work.path(),
        &[("x/docs/a.md", b"first"), ("y/docs/a.md", b"second")],
    );
    let kb = open(&work.path().join("index"));
    let report = kb
        .ingest(
            &[work.path().join("x/docs"), work.path().join("y/docs")],
            IngestOptions::default(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(
        problems(&report),
        [("a.md".to_owned(), ProblemKind::DuplicateId)]
    );
    assert_eq!(report.documents, 1);
}

#[test]
fn rebuild_and_changed_chunking_reprocess_everything() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let long = "sentence with several words in it. ".repeat(200);
    write_files(
        &docs,
        &[("long.md", long.as_bytes()), ("short.md", b"short")],
    );
    let index = work.path().join("index");
    let kb = open(&index);
    ingest(&kb, &[&docs]);
    let chunks_1000 = kb.stats().chunks;
    let rebuilt = kb
        .ingest(
            std::slice::from_ref(&docs),
            IngestOptions {
                rebuild: true,
                ..IngestOptions::default()
            },
            &NoProgress,
        )
        .unwrap();
    assert_eq!(
        (rebuilt.added, rebuilt.unchanged, rebuilt.generation),
        (2, 0, 2)
    );
    drop(kb);

    let mut smaller = config();
    smaller.chunk = ChunkConfig {
        chunk_size: 300,
        chunk_overlap: 50,
    };
    let kb = KnowledgeBase::open(&index, smaller).unwrap();
    assert_eq!(
        kb.stats().chunks,
        chunks_1000,
        "opening does not change the index"
    );
    let report = ingest(&kb, &[&docs]);
    assert_eq!(
        report.added, 2,
        "new chunking settings re-chunk every document"
    );
    assert!(kb.stats().chunks > chunks_1000);
    assert_eq!(kb.stats().settings.chunk.chunk_size, 300);
}

#[test]
fn an_index_reopens_without_ingesting_and_keeps_its_cache() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(
        &docs,
        &[
            ("a.md", b"# Alpha\n\nalpha words"),
            ("b.md", b"bravo words"),
        ],
    );
    let index = work.path().join("index");
    {
        let kb = open(&index);
        ingest(&kb, &[&docs]);
        let mut request = crate::request("alpha", Ranking::Bm25, 10);
        request.use_cache = true;
        assert!(!kb.search(&request).unwrap().cached);
        kb.persist_cache().unwrap();
    }
    let kb = open(&index);
    assert_eq!((kb.generation(), kb.stats().documents), (1, 2));
    let mut request = crate::request("alpha", Ranking::Bm25, 10);
    request.use_cache = true;
    let outcome = kb.search(&request).unwrap();
    assert!(outcome.cached, "the persisted cache answers after a reopen");
    assert_eq!(outcome.results.hits[0].title, "Alpha");
    let stats = kb.stats().cache;
    assert_eq!((stats.hits, stats.misses, stats.queries), (1, 1, 2));
}

#[test]
fn a_damaged_catalog_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("a.md", b"alpha")]);
    let index = work.path().join("index");
    ingest(&open(&index), &[&docs]);
    let catalog = std::fs::read_dir(&index)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("catalog-")
        })
        .unwrap();
    let mut bytes = std::fs::read(&catalog).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&catalog, bytes).unwrap();
    let err = KnowledgeBase::open(&index, config()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(
        err.to_string().contains("run `mneme ingest --rebuild`"),
        "{err}"
    );
}

#[test]
fn formats_are_converted_with_titles_and_headings() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let sample = crate::test_data().join("../knowledge-base/reference");
    for name in [
        "ranking.html",
        "release-checklist.docx",
        "benchmarks.pdf",
        "chunking.py",
    ] {
        std::fs::copy(sample.join(name), docs.join(name)).unwrap();
    }
    let kb = open(&work.path().join("index"));
    let report = ingest(&kb, &[Path::new(&docs)]);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        kb.document("docs/ranking.html").unwrap().title,
        "Ranking in mneme"
    );
    assert_eq!(
        kb.document("docs/release-checklist.docx").unwrap().title,
        "Release checklist"
    );
    assert_eq!(
        kb.document("docs/chunking.py").unwrap().title,
        "chunking.py"
    );
    let html = kb.document_text("docs/ranking.html").unwrap().unwrap();
    assert!(html.starts_with("# Ranking\n"), "{html}");
    assert!(!html.contains("console.log"), "scripts are dropped: {html}");
    let docx = kb
        .document_text("docs/release-checklist.docx")
        .unwrap()
        .unwrap();
    assert!(
        docx.contains("## After a release\n\nTag the commit & update the changelog."),
        "{docx}"
    );
    let pdf = kb.document_text("docs/benchmarks.pdf").unwrap().unwrap();
    assert!(pdf.contains("Benchmarks of mneme"), "{pdf}");
    let hit = &search(&kb, "changelog", Ranking::Bm25, 1).hits[0];
    assert_eq!(hit.heading_path, ["Release checklist", "After a release"]);
}
