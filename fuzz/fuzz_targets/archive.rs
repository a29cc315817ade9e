//! A project import (ZIP or JSON archive) of arbitrary bytes under tight limits: it answers
//! a project or an error, never a panic, and holds to its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mneme_app::projects::archive::{ArchiveLimits, ImportConfig, import};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = mneme_app::config::load(None, &|_| None, &[])
        .expect("the default configuration")
        .kb;
    settings.embedding_model = mneme_app::EmbeddingModel::Off;
    let Ok(projects) = mneme_app::projects::Projects::open(&dir.path().join("projects"), &settings)
    else {
        return;
    };
    let limits = ArchiveLimits {
        max_archive_bytes: 1 << 20,
        max_bytes: 4 << 20,
        max_entry_bytes: 1 << 20,
        max_entries: 16,
        max_documents: 1000,
    };
    let config = ImportConfig {
        new_name: None,
        overwrite: true,
    };
    let _ = import(
        &projects,
        std::io::Cursor::new(data),
        &config,
        &limits,
        &mneme_kb::NoProgress,
    );
});
