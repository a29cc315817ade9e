//! `mneme check`: verifies every store of a data directory (the knowledge-base index with its
//! checksums, the pattern store record by record against the summary of its last commit, the
//! project registry and each project's index) and says what is damaged and what to do.

use std::path::Path;
use std::process::ExitCode;

use mneme_app::Config;
use mneme_store::{ErrorKind, RedbStore};
use serde::Serialize;

use crate::args::CheckArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Ok,
    /// Not created yet (nothing to lose).
    Missing,
    /// Held by a running mneme: not checked.
    InUse,
    Damaged,
}

#[derive(Serialize)]
struct Item {
    store: String,
    path: String,
    state: State,
    detail: String,
}

fn item(store: &str, path: &Path, state: State, detail: impl Into<String>) -> Item {
    Item {
        store: store.to_owned(),
        path: path.display().to_string(),
        state,
        detail: detail.into(),
    }
}

fn knowledge_base(config: &Config) -> Item {
    let dir = &config.kb.index_dir;
    const WHAT: &str = "knowledge-base index";
    if !dir.exists() {
        return item(
            WHAT,
            dir,
            State::Missing,
            "not created yet: `mneme ingest` builds it",
        );
    }
    // The index alone (its checksums, catalog and vectors): the embedding model is not needed.
    match mneme_kb::KnowledgeBase::open(dir, mneme_app::kb_config(&config.kb)) {
        Ok(kb) => {
            let stats = kb.stats();
            item(
                WHAT,
                dir,
                State::Ok,
                format!(
                    "{} documents in {} chunks, {} vectors, generation {}",
                    stats.documents, stats.chunks, stats.vectors, stats.generation
                ),
            )
        }
        Err(err) => item(WHAT, dir, State::Damaged, err.to_string()),
    }
}

fn pattern_store(config: &Config) -> Item {
    let path = &config.seq.store;
    const WHAT: &str = "pattern store";
    if config.cluster.enabled() {
        return item(
            WHAT,
            path,
            State::Missing,
            "cluster mode: the patterns live in PostgreSQL (check it with its own tools)",
        );
    }
    if !path.exists() {
        return item(
            WHAT,
            path,
            State::Missing,
            "not created yet: the first learn creates it",
        );
    }
    // Opening reads every record against the summary of the last commit.
    match RedbStore::open(path).map(|store| store.summary()) {
        Ok(summary) => item(
            WHAT,
            path,
            State::Ok,
            format!("{} records match the last commit", summary.records),
        ),
        Err(err) if err.kind() == ErrorKind::Busy => item(
            WHAT,
            path,
            State::InUse,
            "in use by a running mneme: stop it to check the file (its /health reports a \
             store that takes no writes)",
        ),
        Err(err) => item(WHAT, path, State::Damaged, err.to_string()),
    }
}

fn projects(config: &Config) -> Vec<Item> {
    let dir = &config.server.projects_dir;
    let registry = dir.join("registry.redb");
    const WHAT: &str = "project registry";
    if !registry.exists() {
        return vec![item(
            WHAT,
            &registry,
            State::Missing,
            "no projects yet: POST /api/v2/projects creates the first",
        )];
    }
    let projects = match mneme_app::projects::Projects::open(dir, &config.kb) {
        Ok(projects) => projects,
        Err(mneme_app::projects::ProjectError::Store(err)) if err.kind() == ErrorKind::Busy => {
            return vec![item(
                WHAT,
                &registry,
                State::InUse,
                "in use by a running mneme server: stop it to check",
            )];
        }
        Err(err) => return vec![item(WHAT, &registry, State::Damaged, err.to_string())],
    };
    let list = match projects.list() {
        Ok(list) => list,
        Err(err) => return vec![item(WHAT, &registry, State::Damaged, err.to_string())],
    };
    let mut items = vec![item(
        WHAT,
        &registry,
        State::Ok,
        format!("{} projects", list.len()),
    )];
    for project in list {
        let path = dir.join(&project.project_id);
        let what = format!("project {:?} index", project.name);
        items.push(match projects.index(&project.project_id) {
            Ok(kb) => {
                let stats = kb.stats();
                item(
                    &what,
                    &path,
                    State::Ok,
                    format!("{} documents in {} chunks", stats.documents, stats.chunks),
                )
            }
            Err(err) => item(
                &what,
                &path,
                State::Damaged,
                format!("{err}; restore the project from an export (POST /api/v2/projects/import)"),
            ),
        });
    }
    items
}

/// Checks every store; exit 0 when nothing is damaged, 1 when something is, 3 when a store
/// could not be checked because a running mneme holds it.
pub fn run(config: &Config, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut items = vec![knowledge_base(config), pattern_store(config)];
    items.extend(projects(config));
    let damaged = items.iter().any(|i| i.state == State::Damaged);
    let in_use = items.iter().any(|i| i.state == State::InUse);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ok": !damaged && !in_use, "stores": items})
        );
    } else {
        for i in &items {
            let state = match i.state {
                State::Ok => "ok",
                State::Missing => "missing",
                State::InUse => "in use",
                State::Damaged => "DAMAGED",
            };
            println!("{state:>8}  {}  {}", i.store, i.path);
            println!("          {}", i.detail);
        }
        if damaged {
            println!("\nDamaged stores were found: see what each says to do.");
        } else if !in_use {
            println!("\nEvery store is whole.");
        }
    }
    Ok(if damaged {
        ExitCode::FAILURE
    } else if in_use {
        ExitCode::from(crate::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}
