//! Project archives: export and import round trips (ZIP and JSON), the bounds that refuse
//! decompression bombs without ever holding them, and imports that fail without touching the
//! project they were to replace.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Cursor, Write};
use std::path::Path;

use mneme_app::projects::archive::{
    self, ArchiveError, ArchiveFormat, ArchiveLimits, ImportConfig, Limit,
};
use mneme_app::projects::{ProjectError, Projects, Scope};
use mneme_app::{EmbeddingModel, KbSettings};
use mneme_kb::convert::Format;
use mneme_kb::{IngestProgress, NewDocument, NoProgress, Ranking, SearchRequest};
use serde_json::{Value, json};

/// Counts the bytes allocated by the current thread, so that a test can tell the largest
/// amount an import held at once (other tests run on other threads).
struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// A counting wrapper around the system allocator: the only way to see what an import holds.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// The most bytes this thread held at once while `work` ran, above what it held before.
fn peak_allocated<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = work();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - before).unwrap_or(0))
}

const MIB: u64 = 1 << 20;

fn settings() -> KbSettings {
    let mut kb = mneme_app::config::load(None, &|_| None, &[]).unwrap().kb;
    kb.embedding_model = EmbeddingModel::Off;
    kb
}

fn limits() -> ArchiveLimits {
    ArchiveLimits {
        max_archive_bytes: 16 * MIB,
        max_bytes: 4 * MIB,
        max_entry_bytes: MIB,
        max_entries: 10,
        max_documents: 1000,
    }
}

fn fresh(name: Option<&str>) -> ImportConfig {
    ImportConfig {
        new_name: name.map(str::to_owned),
        overwrite: false,
    }
}

fn overwrite() -> ImportConfig {
    ImportConfig {
        new_name: None,
        overwrite: true,
    }
}

fn document(doc_id: &str, path: &str, text: &str) -> NewDocument {
    NewDocument {
        doc_id: doc_id.into(),
        path: path.into(),
        kb_dir: "kb".into(),
        name: doc_id.into(),
        format: Format::Markdown,
        bytes: text.as_bytes().to_vec(),
    }
}

/// A project named `name` with two documents, their metadata and an API key.
fn project_with_documents(projects: &Projects, name: &str) -> String {
    let project = projects
        .create(
            name,
            "rivers",
            "all-MiniLM-L6-v2",
            r#"{"team":"x","n":[1,2.5]}"#,
        )
        .unwrap();
    let id = project.project_id;
    projects
        .ingest(
            &id,
            vec![
                (
                    document("doc_1", "", "# Glaciers\n\nGlaciers carve valleys.\n"),
                    r#"{"name":"doc_1","path":"","kb_dir":"kb","source":"t"}"#.into(),
                ),
                (
                    document("src/lib.rs", "src/lib.rs", "fn flow() { /* rivers */ }\n"),
                    r#"{"name":"lib","path":"src/lib.rs","kb_dir":"kb","tags":["code"]}"#.into(),
                ),
            ],
        )
        .unwrap();
    projects
        .create_key(&id, "ci", &[Scope::Read], None, None)
        .unwrap();
    id
}

fn hits(projects: &Projects, project_id: &str, query: &str) -> Vec<String> {
    let kb = projects.index(project_id).unwrap();
    let request = SearchRequest {
        query,
        ranking: Ranking::Bm25,
        limit: 10,
        offset: 0,
        with_content: false,
        with_total: false,
        use_cache: false,
        with_snippets: false,
    };
    let outcome = kb.search(&request).unwrap();
    outcome
        .results
        .hits
        .iter()
        .map(|h| h.doc_id.clone())
        .collect()
}

fn export(projects: &Projects, project_id: &str, format: ArchiveFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    archive::write_archive(projects, project_id, format, &mut out).unwrap();
    out.into_inner()
}

fn import(
    projects: &Projects,
    bytes: &[u8],
    config: &ImportConfig,
) -> Result<String, ArchiveError> {
    archive::import(projects, Cursor::new(bytes), config, &limits(), &NoProgress)
        .map(|imported| imported.project.project_id)
}

/// Takes the files of an import away right before its index commits, as a failing disk
/// would: the ingest of the new project fails after its documents were read and converted.
/// (Moved away in one step, to a directory of the test's: the index is still writing.)
struct DiskFailsBeforeCommit<'a> {
    projects_dir: &'a Path,
    lost: &'a Path,
}

impl IngestProgress for DiskFailsBeforeCommit<'_> {
    fn before_commit(&self) {
        for entry in std::fs::read_dir(self.projects_dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with(".staging-") {
                std::fs::rename(entry.path(), self.lost.join(entry.file_name())).unwrap();
            }
        }
    }
}

/// A ZIP of `(name, content)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn manifest() -> Vec<u8> {
    json!({"version": "2.3.0", "project_name": "bomb"})
        .to_string()
        .into_bytes()
}

fn project_entry(name: &str) -> Vec<u8> {
    json!({"name": name, "description": "", "metadata": {}})
        .to_string()
        .into_bytes()
}

/// A ZIP whose `documents.json` is one document of `size` `0` characters (valid JSON, so only
/// a bound stops it), written a mebibyte at a time: neither the test nor the archive ever
/// holds it.
fn zip_bomb(size: u64) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(size >= u64::from(u32::MAX));
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(&manifest()).unwrap();
    zip.start_file("project.json", options).unwrap();
    zip.write_all(&project_entry("bomb")).unwrap();
    zip.start_file("documents.json", options).unwrap();
    zip.write_all(br#"{"ids": ["bomb"], "documents": [""#)
        .unwrap();
    let zeros = vec![b'0'; MIB as usize];
    for _ in 0..size / MIB {
        zip.write_all(&zeros).unwrap();
    }
    zip.write_all(br#""]}"#).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Rewrites a 4-byte field of `documents.json`'s headers, local and central, to `value`:
/// `(local offset, central offset)`, `SIZE` or `CRC`.
fn patch_headers(archive: &mut [u8], field: (usize, usize), value: u32) {
    let name = b"documents.json";
    let mut patched = 0;
    for at in 0..archive.len().saturating_sub(46) {
        let (name_len_at, field_at, name_at) = match &archive[at..at + 4] {
            b"PK\x03\x04" => (at + 26, at + field.0, at + 30),
            b"PK\x01\x02" => (at + 28, at + field.1, at + 46),
            _ => continue,
        };
        let name_len = u16::from_le_bytes([archive[name_len_at], archive[name_len_at + 1]]);
        if archive.get(name_at..name_at + usize::from(name_len)) == Some(&name[..]) {
            archive[field_at..field_at + 4].copy_from_slice(&value.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "both headers of documents.json were rewritten");
}

/// The uncompressed size in a local and in a central header.
const SIZE: (usize, usize) = (22, 24);
const CRC: (usize, usize) = (14, 16);

fn assert_too_large(result: Result<String, ArchiveError>, limit: Limit, message: &str) {
    match result {
        Err(err @ ArchiveError::TooLarge { limit: got, .. }) => {
            assert_eq!(got, limit);
            assert_eq!(err.to_string(), message);
        }
        other => panic!("expected {limit:?} to be refused, got {other:?}"),
    }
}

fn staging_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn zip_and_json_archives_round_trip_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let id = project_with_documents(&projects, "source");
    let zip_bytes = export(&projects, &id, ArchiveFormat::Zip);
    let json_bytes = export(&projects, &id, ArchiveFormat::Json);

    // The JSON archive holds exactly the entries of the ZIP.
    let mut zip = zip::ZipArchive::new(Cursor::new(&zip_bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(names, ["manifest.json", "project.json", "documents.json"]);
    let json: Value = serde_json::from_slice(&json_bytes).unwrap();
    for (entry, field) in [
        ("manifest.json", "manifest"),
        ("project.json", "project"),
        ("documents.json", "documents"),
    ] {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(entry).unwrap(), &mut text).unwrap();
        let mut value: Value = serde_json::from_str(&text).unwrap();
        let mut expected = json[field].clone();
        if entry == "manifest.json" {
            value["export_date"] = Value::Null;
            expected["export_date"] = Value::Null;
        }
        assert_eq!(value, expected, "{entry}");
    }
    assert_eq!(json["manifest"]["version"], "2.3.0");
    assert_eq!(json["manifest"]["document_count"], 2);
    assert_eq!(
        json["project"]["metadata"],
        json!({"team": "x", "n": [1, 2.5]})
    );
    assert_eq!(json["documents"]["ids"], json!(["doc_1", "src/lib.rs"]));

    for (format, bytes) in [("zip", &zip_bytes), ("json", &json_bytes)] {
        let copy = import(&projects, bytes, &fresh(Some(&format!("copy {format}")))).unwrap();
        let project = projects.get(&copy).unwrap();
        assert_eq!(project.description, "rivers");
        assert_eq!(project.metadata, r#"{"team":"x","n":[1,2.5]}"#);
        assert_eq!(hits(&projects, &copy, "glaciers"), ["doc_1"], "{format}");
        assert_eq!(hits(&projects, &copy, "flow"), ["src/lib.rs"], "{format}");
        assert_eq!(
            projects.document_metadata(&copy).unwrap(),
            projects.document_metadata(&id).unwrap(),
            "{format}"
        );
        let kb = projects.index(&copy).unwrap();
        assert_eq!(
            kb.document_text("src/lib.rs").unwrap().as_deref(),
            Some("fn flow() { /* rivers */ }\n")
        );
        // An export of the copy holds the same documents.
        let again: Value =
            serde_json::from_slice(&export(&projects, &copy, ArchiveFormat::Json)).unwrap();
        assert_eq!(again["documents"], json["documents"], "{format}");
    }
    assert!(matches!(
        import(&projects, &json_bytes, &fresh(None)),
        Err(ArchiveError::Project(ProjectError::NameTaken(_)))
    ));
    assert!(staging_dirs(dir.path()).is_empty());
}

#[test]
fn an_export_file_is_written_whole_into_the_exports_directory() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let id = project_with_documents(&projects, "source");
    for format in [ArchiveFormat::Zip, ArchiveFormat::Json] {
        let file = archive::export_file(&projects, &id, format).unwrap();
        assert_eq!(file.document_count, 2);
        assert_eq!(file.path.parent().unwrap(), dir.path().join("exports"));
        assert_eq!(
            file.path.extension().unwrap().to_str(),
            Some(format.extension())
        );
        assert_eq!(
            std::fs::metadata(&file.path).unwrap().len(),
            file.size_bytes
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "no temporary file is left: {left:?}");
    assert!(matches!(
        archive::export_file(&projects, "../../etc", ArchiveFormat::Zip),
        Err(ProjectError::NotFound(_))
    ));
}

#[test]
fn a_zip_bomb_is_refused_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let bomb = zip_bomb(64 * MIB);
    assert!(
        bomb.len() < 256 * 1024,
        "a small archive: {} bytes",
        bomb.len()
    );
    let (result, peak) = peak_allocated(|| import(&projects, &bomb, &fresh(None)));
    assert_too_large(
        result,
        Limit::EntryBytes,
        "documents.json decompresses to more than 1048576 bytes, the limit \
         KB_IMPORT_MAX_ENTRY_BYTES sets; raise KB_IMPORT_MAX_ENTRY_BYTES \
         (server.import_max_entry_bytes in the config file) to import it",
    );
    assert!(
        peak < 4 * MIB as usize,
        "the import held {peak} bytes at most"
    );
    assert!(projects.list().unwrap().is_empty());
    assert!(staging_dirs(dir.path()).is_empty());
}

#[test]
fn a_header_that_lies_about_the_size_does_not_raise_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let mut bomb = zip_bomb(64 * MIB);
    // It claims 100 bytes: only the bytes actually decompressed count.
    patch_headers(&mut bomb, SIZE, 100);
    let (result, peak) = peak_allocated(|| import(&projects, &bomb, &fresh(None)));
    assert_too_large(
        result,
        Limit::EntryBytes,
        "documents.json decompresses to more than 1048576 bytes, the limit \
         KB_IMPORT_MAX_ENTRY_BYTES sets; raise KB_IMPORT_MAX_ENTRY_BYTES \
         (server.import_max_entry_bytes in the config file) to import it",
    );
    assert!(
        peak < 4 * MIB as usize,
        "the import held {peak} bytes at most"
    );
    // Within the limits a declared size means nothing either way: the content (which its
    // CRC-32 vouches for) imports.
    let mut small = zip_of(&[
        ("manifest.json", &manifest()),
        ("project.json", &project_entry("small")),
        (
            "documents.json",
            br#"{"ids": ["a"], "documents": ["text"]}"#,
        ),
    ]);
    patch_headers(&mut small, SIZE, 5);
    let id = import(&projects, &small, &fresh(None)).unwrap();
    assert_eq!(hits(&projects, &id, "text"), ["a"]);
}

#[test]
fn entries_share_one_bound_for_the_whole_archive() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let padding = vec![b' '; 900 * 1024];
    let mut project = project_entry("spread");
    project.extend_from_slice(&padding);
    let mut documents = br#"{"ids": [], "documents": []}"#.to_vec();
    documents.extend_from_slice(&padding);
    let archive = zip_of(&[
        ("manifest.json", &manifest()),
        ("project.json", &project),
        ("documents.json", &documents),
    ]);
    let tight = ArchiveLimits {
        max_bytes: MIB,
        ..limits()
    };
    let result = archive::import(
        &projects,
        Cursor::new(&archive),
        &fresh(None),
        &tight,
        &NoProgress,
    );
    assert_too_large(
        result.map(|i| i.project.project_id),
        Limit::TotalBytes,
        "the entries of the archive decompress to more than 1048576 bytes, the limit \
         KB_IMPORT_MAX_BYTES sets; raise KB_IMPORT_MAX_BYTES \
         (server.import_max_bytes in the config file) to import it",
    );
    // Within the limits, the same archive imports.
    assert!(import(&projects, &archive, &fresh(None)).is_ok());
}

#[test]
fn too_many_entries_or_too_large_an_archive_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let names: Vec<String> = (0..11).map(|i| format!("extra-{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    assert_too_large(
        import(&projects, &zip_of(&entries), &fresh(None)),
        Limit::Entries,
        "the archive has more than 10 entries, the limit KB_IMPORT_MAX_ENTRIES sets; \
         raise KB_IMPORT_MAX_ENTRIES (server.import_max_entries in the config file) to \
         import it",
    );
    let small = ArchiveLimits {
        max_archive_bytes: 100,
        ..limits()
    };
    let result = archive::import(
        &projects,
        Cursor::new(&zip_bomb(MIB)),
        &fresh(None),
        &small,
        &NoProgress,
    );
    assert_too_large(
        result.map(|i| i.project.project_id),
        Limit::ArchiveBytes,
        "the archive is more than 100 bytes, the limit KB_IMPORT_MAX_UPLOAD_BYTES sets; \
         raise KB_IMPORT_MAX_UPLOAD_BYTES (server.import_max_upload_bytes in the config \
         file) to import it",
    );
    // A JSON archive is bounded as a whole.
    let mut json = br#"{"manifest": {"version": "2.3.0"}, "pad": ""#.to_vec();
    json.extend(std::iter::repeat_n(b'a', 5 * MIB as usize));
    json.extend_from_slice(b"\"}");
    assert_too_large(
        import(&projects, &json, &fresh(None)),
        Limit::TotalBytes,
        "the archive is more than 4194304 bytes, the limit KB_IMPORT_MAX_BYTES sets; \
         raise KB_IMPORT_MAX_BYTES (server.import_max_bytes in the config file) to \
         import it",
    );
}

#[test]
fn too_many_documents_are_refused_however_short_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    // A mebibyte of `0,`: half a million items that cost dozens of bytes each once parsed.
    let mut documents = br#"{"ids": ["#.to_vec();
    documents.extend(std::iter::repeat_n(&b"0,"[..], 500_000).flatten());
    documents.extend_from_slice(b"0]}");
    let archive = zip_of(&[
        ("manifest.json", &manifest()),
        ("project.json", &project_entry("many")),
        ("documents.json", &documents),
    ]);
    let roomy = ArchiveLimits {
        max_entry_bytes: 4 * MIB,
        ..limits()
    };
    let (result, peak) = peak_allocated(|| {
        archive::import(
            &projects,
            Cursor::new(&archive),
            &fresh(None),
            &roomy,
            &NoProgress,
        )
        .map(|imported| imported.project.project_id)
    });
    assert_too_large(
        result,
        Limit::Documents,
        "documents.json has more than 1000 documents, the limit KB_IMPORT_MAX_DOCUMENTS \
         sets; raise KB_IMPORT_MAX_DOCUMENTS (server.import_max_documents in the config \
         file) to import it",
    );
    assert!(peak < MIB as usize, "the import held {peak} bytes at most");
    // The same in a JSON archive.
    let mut json =
        br#"{"manifest": {"version": "2.3.0"}, "project": {"name": "many"}, "documents": "#
            .to_vec();
    json.extend_from_slice(&documents);
    json.push(b'}');
    assert_too_large(
        import(&projects, &json, &fresh(None)),
        Limit::Documents,
        "the archive has more than 1000 documents, the limit KB_IMPORT_MAX_DOCUMENTS \
         sets; raise KB_IMPORT_MAX_DOCUMENTS (server.import_max_documents in the config \
         file) to import it",
    );
    assert!(projects.list().unwrap().is_empty());
}

#[test]
fn malformed_archives_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a zip".to_vec(), "not a ZIP archive: "),
        (
            zip_of(&[("project.json", b"{}")]),
            "the archive has no manifest.json",
        ),
        (
            zip_of(&[("manifest.json", br#"{"version": "1.0"}"#)]),
            "unsupported export version \"1.0\" (expected 2.x)",
        ),
        (
            zip_of(&[("manifest.json", &manifest()), ("project.json", b"{")]),
            "project.json is not valid JSON: ",
        ),
        (
            zip_of(&[
                ("manifest.json", &manifest()),
                ("project.json", b"{}"),
                ("documents.json", b"{}"),
            ]),
            "project.json has no name",
        ),
        (
            zip_of(&[
                ("manifest.json", &manifest()),
                ("project.json", &project_entry("odd")),
                (
                    "documents.json",
                    br#"{"ids": ["a", "b"], "documents": ["x"]}"#,
                ),
            ]),
            "documents.json: ids and documents differ in length",
        ),
        (
            br#"{"project": {}}"#.to_vec(),
            "the archive has no manifest",
        ),
    ];
    let mut bad_crc = zip_of(&[
        ("manifest.json", &manifest()),
        ("project.json", &project_entry("crc")),
        (
            "documents.json",
            br#"{"ids": ["a"], "documents": ["text"]}"#,
        ),
    ]);
    patch_headers(&mut bad_crc, CRC, 12345);
    let cases = [
        cases,
        vec![(
            bad_crc,
            "documents.json is corrupt: its CRC-32 does not match the archive's",
        )],
    ]
    .concat();
    for (archive, message) in cases {
        match import(&projects, &archive, &fresh(None)) {
            Err(ArchiveError::Invalid(got)) => assert!(got.starts_with(message), "{got}"),
            other => panic!("{message}: {other:?}"),
        }
    }
    assert!(projects.list().unwrap().is_empty());
    assert!(staging_dirs(dir.path()).is_empty());
}

#[test]
fn an_overwrite_that_fails_midway_leaves_the_old_project_whole() {
    let dir = tempfile::tempdir().unwrap();
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    let id = project_with_documents(&projects, "keep");
    let metadata = projects.document_metadata(&id).unwrap();
    let keys = projects.keys(&id).unwrap();
    let good = export(&projects, &id, ArchiveFormat::Zip);

    // The same archive, but its last entry breaks off after many good documents.
    let mut broken = String::from(r#"{"ids": ["#);
    for i in 0..500 {
        broken.push_str(&format!(r#""doc_{i}", "#));
    }
    broken.push_str(r#""last"], "documents": ["one", "#);
    let corrupt = zip_of(&[
        ("manifest.json", &manifest()),
        ("project.json", &project_entry("keep")),
        ("documents.json", broken.as_bytes()),
    ]);
    match import(&projects, &corrupt, &overwrite()) {
        Err(ArchiveError::Invalid(message)) => {
            assert!(
                message.starts_with("documents.json is not valid JSON"),
                "{message}"
            )
        }
        other => panic!("the corrupt archive was accepted: {other:?}"),
    }
    let still = projects.list().unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(
        still[0].project_id, id,
        "the old project is still the one named keep"
    );
    assert_eq!(hits(&projects, &id, "glaciers"), ["doc_1"]);
    assert_eq!(projects.document_metadata(&id).unwrap(), metadata);
    assert_eq!(projects.keys(&id).unwrap(), keys);
    assert!(
        staging_dirs(dir.path()).is_empty(),
        "the staged copy is gone"
    );

    // The index of the new project fails to commit: the old project is still whole.
    let lost = tempfile::tempdir().unwrap();
    let failing = DiskFailsBeforeCommit {
        projects_dir: dir.path(),
        lost: lost.path(),
    };
    let failed = archive::import(
        &projects,
        Cursor::new(&good),
        &overwrite(),
        &limits(),
        &failing,
    );
    assert!(
        matches!(failed, Err(ArchiveError::Project(ProjectError::Kb(_)))),
        "{failed:?}"
    );
    assert_eq!(projects.list().unwrap().len(), 1);
    assert_eq!(projects.get(&id).unwrap().name, "keep");
    assert_eq!(hits(&projects, &id, "glaciers"), ["doc_1"]);
    assert_eq!(projects.document_metadata(&id).unwrap(), metadata);
    assert_eq!(projects.keys(&id).unwrap(), keys);
    assert!(staging_dirs(dir.path()).is_empty());

    // A good archive replaces it: one new project, the old one's index and keys gone.
    let new_id = import(&projects, &good, &overwrite()).unwrap();
    assert_ne!(new_id, id);
    let names: Vec<(String, String)> = projects
        .list()
        .unwrap()
        .into_iter()
        .map(|p| (p.project_id, p.name))
        .collect();
    assert_eq!(names, [(new_id.clone(), "keep".to_owned())]);
    assert_eq!(hits(&projects, &new_id, "glaciers"), ["doc_1"]);
    assert!(!dir.path().join(&id).exists());
    assert!(projects.keys(&id).is_err());
    assert!(staging_dirs(dir.path()).is_empty());

    // And it survives reopening.
    drop(projects);
    let projects = Projects::open(dir.path(), &settings()).unwrap();
    assert_eq!(hits(&projects, &new_id, "valleys"), ["doc_1"]);
}

#[test]
fn staging_directories_left_by_a_crash_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(Projects::open(dir.path(), &settings()).unwrap());
    std::fs::create_dir_all(dir.path().join(".staging-crashed/index")).unwrap();
    std::fs::create_dir_all(dir.path().join("exports")).unwrap();
    drop(Projects::open(dir.path(), &settings()).unwrap());
    assert!(!dir.path().join(".staging-crashed").exists());
    assert!(dir.path().join("exports").exists());
}
