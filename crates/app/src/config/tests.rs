use std::collections::HashMap;

use super::*;

fn check(
    file: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&'static str, &str)],
) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mneme.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let flags: Vec<FlagValue> = flags
        .iter()
        .map(|(key, value)| FlagValue {
            key,
            value: (*value).into(),
            flag: "--flag",
        })
        .collect();
    let lookup = |var: &str| env.get(var).cloned();
    load(file.map(|_| path.as_path()), &lookup, &flags)
        .map_err(|e| e.message.replace(&dir.path().display().to_string(), "DIR"))
}

#[test]
fn defaults_match_knowledgebeast() {
    let config = check(None, &[], &[]).unwrap();
    assert_eq!(config.kb.knowledge_dirs, [PathBuf::from("knowledge-base")]);
    assert_eq!(config.kb.max_cache_size, 100);
    assert_eq!((config.kb.chunk_size, config.kb.chunk_overlap), (1000, 200));
    assert_eq!(config.kb.heartbeat_interval, 300);
    assert!(config.kb.auto_warm);
    assert_eq!(config.kb.index_dir, PathBuf::from(".mneme/kb"));
    assert_eq!(config.origins["kb.chunk_size"], "default");
}

#[test]
fn layers_override_in_order() {
    let file =
        "data_dir = \"store\"\n[kb]\nmax_cache_size = 5\nchunk_size = 500\nmax_workers = 3\n";
    let config = check(
        Some(file),
        &[("KB_MAX_CACHE_SIZE", "7"), ("KB_MAX_WORKERS", "4")],
        &[("kb.max_workers", "6")],
    )
    .unwrap();
    assert_eq!(config.kb.chunk_size, 500, "file beats default");
    assert_eq!(config.kb.max_cache_size, 7, "env beats file");
    assert_eq!(config.kb.max_workers, 6, "flag beats env");
    assert!(
        config.data_dir.ends_with("store"),
        "file paths are relative to the file"
    );
    assert_eq!(config.origins["kb.max_cache_size"], "KB_MAX_CACHE_SIZE");
}

#[test]
fn knowledgebeast_variables_are_read() {
    let config = check(
        None,
        &[
            ("KB_KNOWLEDGE_DIRS", "docs, more-docs ,"),
            ("KB_CACHE_FILE", "/tmp/idx"),
            ("KB_AUTO_WARM", "no"),
            ("KB_HEARTBEAT_INTERVAL", "60"),
            ("KB_CHUNK_SIZE", "800"),
            ("KB_CHUNK_OVERLAP", "100"),
            ("KB_LOG_LEVEL", "WARNING"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        config.kb.knowledge_dirs,
        [PathBuf::from("docs"), PathBuf::from("more-docs")]
    );
    assert_eq!(config.kb.index_dir, PathBuf::from("/tmp/idx"));
    assert!(!config.kb.auto_warm);
    assert_eq!(config.kb.heartbeat_interval, 60);
    assert_eq!(config.log_level, LogLevel::Warn);
}

#[test]
fn bad_values_name_their_source_and_what_is_accepted() {
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            None,
            &[("KB_MAX_CACHE_SIZE", "abc")],
            "KB_MAX_CACHE_SIZE=\"abc\" is not valid: expected an integer >= 1",
        ),
        (
            None,
            &[("KB_MAX_CACHE_SIZE", "0")],
            "KB_MAX_CACHE_SIZE=\"0\" is not valid: expected an integer >= 1",
        ),
        (
            None,
            &[("KB_HEARTBEAT_INTERVAL", "5")],
            "KB_HEARTBEAT_INTERVAL=\"5\" is not valid: expected an integer >= 10",
        ),
        (
            None,
            &[("KB_AUTO_WARM", "maybe")],
            "KB_AUTO_WARM=\"maybe\" is not valid: expected true or false (also 1/0, yes/no, on/off, t/f, y/n)",
        ),
        (
            None,
            &[("KB_LOG_LEVEL", "loud")],
            "KB_LOG_LEVEL=\"loud\" is not valid: expected one of trace, debug, info, warning, error, critical",
        ),
        (
            None,
            &[("KB_KNOWLEDGE_DIRS", " , ")],
            "KB_KNOWLEDGE_DIRS=\" , \" is not valid: expected a comma-separated list of directories (a TOML array in files)",
        ),
        (
            None,
            &[("KB_CHUNK_SIZE", "100"), ("KB_CHUNK_OVERLAP", "100")],
            "chunk_overlap (100, from KB_CHUNK_OVERLAP) must be smaller than chunk_size (100, from KB_CHUNK_SIZE)",
        ),
        (
            Some("[kb]\nmax_workers = \"two\"\n"),
            &[],
            "DIR/mneme.toml: `kb.max_workers` must be an integer >= 1",
        ),
        (
            Some("[kb]\nchunksize = 3\n"),
            &[],
            "DIR/mneme.toml: unknown setting `kb.chunksize`",
        ),
        (
            Some("data_dir = [\n"),
            &[],
            "DIR/mneme.toml is not valid TOML",
        ),
    ];
    for (file, env, expect) in cases {
        let err = check(*file, env, &[]).unwrap_err();
        assert!(
            err.starts_with(expect),
            "{err:?} should start with {expect:?}"
        );
    }
}

#[test]
fn import_limits_have_defaults_and_settings() {
    let config = check(None, &[], &[]).unwrap();
    assert_eq!(
        config.server.import,
        ArchiveLimits {
            max_archive_bytes: 10 * 1024 * 1024,
            max_bytes: 1 << 30,
            max_entry_bytes: 256 << 20,
            max_entries: 100,
            max_documents: 1_000_000,
        }
    );
    let config = check(
        Some("[server]\nimport_max_entries = 5\n"),
        &[
            ("KB_MAX_REQUEST_SIZE", "2000"),
            ("KB_IMPORT_MAX_BYTES", "1048576"),
            ("KB_IMPORT_MAX_ENTRY_BYTES", "4096"),
            ("KB_IMPORT_MAX_DOCUMENTS", "7"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        config.server.import,
        ArchiveLimits {
            max_archive_bytes: 2000,
            max_bytes: 1 << 20,
            max_entry_bytes: 4096,
            max_entries: 5,
            max_documents: 7,
        },
        "the upload follows KB_MAX_REQUEST_SIZE unless set"
    );
    assert_eq!(
        check(None, &[("KB_IMPORT_MAX_UPLOAD_BYTES", "0")], &[]).unwrap_err(),
        "KB_IMPORT_MAX_UPLOAD_BYTES=\"0\" is not valid: expected an integer >= 1"
    );
}

#[test]
fn yes_no_reads_pydantics_words_and_nothing_else() {
    for word in ["true", "TRUE", "1", "yes", "On", "t", "Y"] {
        assert_eq!(super::yes_no(word), Some(true), "{word}");
    }
    for word in ["false", "False", "0", "no", "OFF", "f", "N"] {
        assert_eq!(super::yes_no(word), Some(false), "{word}");
    }
    for word in ["", " true", "2", "maybe", "yess", "-1"] {
        assert_eq!(super::yes_no(word), None, "{word:?}");
    }
}

#[test]
fn log_level_reads_the_guides_variable_and_the_more_specific_ones_win() {
    let config = check(None, &[("LOG_LEVEL", "DEBUG")], &[]).unwrap();
    assert_eq!(config.log_level, LogLevel::Debug);
    assert_eq!(config.origins["log_level"], "LOG_LEVEL");
    let config = check(
        None,
        &[("LOG_LEVEL", "DEBUG"), ("KB_LOG_LEVEL", "ERROR")],
        &[],
    )
    .unwrap();
    assert_eq!(config.log_level, LogLevel::Error);
    let config = check(
        None,
        &[("LOG_LEVEL", "DEBUG"), ("MNEME_LOG_LEVEL", "warn")],
        &[],
    )
    .unwrap();
    assert_eq!(config.log_level, LogLevel::Warn);
    let config = check(None, &[("KB_CHROMA_PATH", "/srv/chroma")], &[]).unwrap();
    assert_eq!(config.server.projects_dir, PathBuf::from("/srv/chroma"));
}

#[test]
fn fast_matching_off_is_refused_with_the_variable_named() {
    assert!(check(None, &[("KATO_USE_FAST_MATCHING", "true")], &[]).is_ok());
    let err = check(None, &[("KATO_USE_FAST_MATCHING", "false")], &[]).unwrap_err();
    assert!(err.contains("KATO_USE_FAST_MATCHING=false"), "{err}");
    assert!(err.contains("difflib"), "{err}");
    let err = check(None, &[("USE_FAST_MATCHING", "no")], &[]).unwrap_err();
    assert!(err.contains("USE_FAST_MATCHING=false"), "{err}");
    let err = check(None, &[("USE_FAST_MATCHING", "maybe")], &[]).unwrap_err();
    assert!(err.contains("USE_FAST_MATCHING"), "{err}");
}
