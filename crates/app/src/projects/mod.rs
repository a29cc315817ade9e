//! API v2 projects: named, isolated knowledge bases with their own index, document metadata
//! and API keys, all kept under one directory (`<projects_dir>/registry.redb` plus one index
//! directory per project) so that they survive a restart.
//!
//! API keys are stored as SHA-256 digests; the raw key is returned once, at creation.
//! Export and import of whole projects live in [`archive`].

pub mod archive;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mneme_kb::{IngestReport, KnowledgeBase, NewDocument, NoProgress};
use mneme_store::{KvSnapshot, KvStore, RedbStore, WriteBatch};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::KbSettings;
use crate::knowledge::kb_config;
use crate::time::iso_naive;

/// One project, as KnowledgeBeast's `ProjectResponse` describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub embedding_model: String,
    pub created_at: String,
    pub updated_at: String,
    /// User metadata as JSON text (the server owns the JSON).
    pub metadata: String,
    /// Creation order, for "newest first" listings.
    pub sequence: u64,
}

impl Project {
    pub fn collection_name(&self) -> String {
        format!("kb_project_{}", self.project_id)
    }
}

/// Fields of an update; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub embedding_model: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A project API key, without the key itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: String,
    pub project_id: String,
    pub name: String,
    pub key_hash: String,
    /// Sorted, distinct.
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub expires_unix: Option<u64>,
    pub revoked: bool,
    pub last_used_at: Option<String>,
    pub last_used_unix: Option<u64>,
    pub created_by: Option<String>,
    pub sequence: u64,
}

impl ApiKey {
    /// `admin` implies everything; `write` implies `read`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|s| {
            *s == Scope::Admin || *s == needed || (*s == Scope::Write && needed == Scope::Read)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("Project not found: {0}")]
    NotFound(String),
    #[error("Project with name '{0}' already exists")]
    NameTaken(String),
    #[error("API key not found: {0}")]
    KeyNotFound(String),
    #[error("project storage failed: {0}")]
    Store(#[from] mneme_store::Error),
    #[error("{0}")]
    Kb(#[from] mneme_kb::Error),
    #[error("project registry is corrupt: {0}")]
    Corrupt(String),
    /// Cluster mode: the shared registry (PostgreSQL) is out of reach; try again later.
    #[error("{0}")]
    Unavailable(String),
}

pub type Result<T, E = ProjectError> = std::result::Result<T, E>;

const REGISTRY: &str = "registry.redb";
/// Directories of projects being imported start with this; the registry never names them.
const STAGING: &str = ".staging-";

/// Key prefixes in the registry.
const PROJECT: &[u8] = b"p/";
const KEY: &[u8] = b"k/";
const KEY_HASH: &[u8] = b"h/";
const DOC_META: &[u8] = b"d/";
/// A key's last use: (ISO time, Unix seconds), apart from its record.
const LAST_USED: &[u8] = b"u/";
const SEQUENCE: &[u8] = b"seq";

/// A change to the shared document log, written in the same transaction as a registry batch.
pub enum LogOp {
    /// Documents added or replaced in a project: its next generation.
    Append {
        project_id: String,
        /// A registry key that must exist when the append commits (the project's record,
        /// share-locked, so that a delete cannot pass in between).
        requires: Vec<u8>,
        documents: Vec<NewDocument>,
    },
    /// A project removed: its log and generation go.
    Drop { project_id: String },
}

/// The registry where several nodes share it (cluster mode): the keys and values of the
/// embedded registry, plus an ordered log of each project's documents, which every node's
/// replica of the project index follows (one generation per ingest).
pub trait SharedRegistry: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Applies `batch` and `log` in one transaction.
    fn write(&self, batch: WriteBatch, log: Vec<LogOp>) -> Result<()>;
    /// Serialises registry writers that read before they write (name checks, sequence)
    /// across every node, until the guard is dropped.
    fn lock(&self) -> Result<Box<dyn Send>>;
    /// The project's last generation in the log (0: none).
    fn generation(&self, project_id: &str) -> Result<u64>;
    /// The documents of a page of the generations after `after` (up to `latest`), in log
    /// order, and the last generation the page covers.
    fn documents_since(
        &self,
        project_id: &str,
        after: u64,
        latest: u64,
    ) -> Result<(Vec<NewDocument>, u64)>;
}

/// Where the registry lives.
enum Registry {
    Local(RedbStore),
    Shared(Arc<dyn SharedRegistry>),
}

impl Registry {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Registry::Local(store) => Ok(store.snapshot()?.get(key)?),
            Registry::Shared(shared) => shared.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self {
            Registry::Local(store) => Ok(store.snapshot()?.scan_prefix(prefix)?),
            Registry::Shared(shared) => shared.scan_prefix(prefix),
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.write_with_log(batch, Vec::new())
    }

    fn write_with_log(&self, batch: WriteBatch, log: Vec<LogOp>) -> Result<()> {
        match self {
            Registry::Local(store) => Ok(store.write(batch)?),
            Registry::Shared(shared) => shared.write(batch, log),
        }
    }

    /// A write that may be lost in a crash (the last use of a key).
    fn write_deferred(&self, batch: WriteBatch) -> Result<()> {
        match self {
            Registry::Local(store) => {
                Ok(store.write_with(batch, mneme_store::Durability::Deferred)?)
            }
            Registry::Shared(shared) => shared.write(batch, Vec::new()),
        }
    }
}

/// The registry held for a read-then-write (dropped in field order: the cluster's lock, then
/// this process's).
struct Exclusive<'a> {
    _shared: Option<Box<dyn Send>>,
    _local: std::sync::MutexGuard<'a, ()>,
}

/// A project index followed by this node in cluster mode: the generation of the shared log
/// it holds, behind the lock that applies the log to it.
type Replica = Arc<Mutex<u64>>;

pub struct Projects {
    dir: PathBuf,
    store: Registry,
    /// Cluster mode: per project, the generation of the log this node's index holds.
    replicas: Mutex<HashMap<String, Replica>>,
    /// Cluster mode: how long a project's replica may answer without reading the registry
    /// (0: it reads before every use), and when each was last known current.
    max_staleness: Duration,
    confirmed: Mutex<HashMap<String, Instant>>,
    settings: KbSettings,
    indexes: Mutex<HashMap<String, Arc<KnowledgeBase>>>,
    /// The embedding model every project shares (loaded once, on first use).
    embedder: Mutex<Option<Option<Arc<dyn mneme_kb::Embedder>>>>,
    /// Serialises registry changes that read before they write (name checks, sequence).
    writing: Mutex<()>,
}

impl std::fmt::Debug for Projects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projects").field("dir", &self.dir).finish()
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `n` random bytes as URL-safe base64 without padding (Python's `secrets.token_urlsafe`).
pub fn token_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    base64_url(&bytes)
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The stored digest of a raw key.
pub fn hash_key(raw: &str) -> String {
    let digest = sha2::Sha256::digest(raw.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("records serialise")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|err| ProjectError::Corrupt(format!("{what}: {err}")))
}

fn key(prefix: &[u8], id: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

fn doc_prefix(project_id: &str) -> Vec<u8> {
    let mut out = DOC_META.to_vec();
    out.extend_from_slice(project_id.as_bytes());
    out.push(b'/');
    out
}

impl Projects {
    /// Opens (creating) the projects directory.
    pub fn open(dir: &Path, settings: &KbSettings) -> Result<Projects> {
        std::fs::create_dir_all(dir)
            .map_err(|err| mneme_store::Error::Io(format!("creating {}: {err}", dir.display())))?;
        let store = Registry::Local(RedbStore::open(&dir.join(REGISTRY))?);
        remove_staging_dirs(dir);
        Ok(Projects {
            dir: dir.to_path_buf(),
            store,
            replicas: Mutex::new(HashMap::new()),
            max_staleness: Duration::ZERO,
            confirmed: Mutex::new(HashMap::new()),
            settings: settings.clone(),
            indexes: Mutex::new(HashMap::new()),
            embedder: Mutex::new(None),
            writing: Mutex::new(()),
        })
    }

    /// Cluster mode: the registry and the documents live in `shared`; `dir` holds this node's
    /// replicas of the project indexes, which are rebuilt from the shared log (whatever a
    /// previous run left there is removed).
    ///
    /// `max_staleness` above zero lets a project's replica answer without reading the
    /// registry when it was known current that recently (`MNEME_MAX_STALENESS_MS`).
    pub fn open_shared(
        dir: &Path,
        settings: &KbSettings,
        shared: Arc<dyn SharedRegistry>,
        max_staleness: Duration,
    ) -> Result<Projects> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|err| {
                mneme_store::Error::Io(format!("clearing the replicas in {}: {err}", dir.display()))
            })?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|err| mneme_store::Error::Io(format!("creating {}: {err}", dir.display())))?;
        Ok(Projects {
            dir: dir.to_path_buf(),
            store: Registry::Shared(shared),
            replicas: Mutex::new(HashMap::new()),
            max_staleness,
            confirmed: Mutex::new(HashMap::new()),
            settings: settings.clone(),
            indexes: Mutex::new(HashMap::new()),
            embedder: Mutex::new(None),
            writing: Mutex::new(()),
        })
    }

    /// Whether the registry is shared with other nodes (cluster mode).
    pub fn is_shared(&self) -> bool {
        matches!(self.store, Registry::Shared(_))
    }

    /// Holds the registry for a read-then-write: this process's lock and, in cluster mode,
    /// the cluster's.
    fn exclusive(&self) -> Result<Exclusive<'_>> {
        let local = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let shared = match &self.store {
            Registry::Local(_) => None,
            Registry::Shared(shared) => Some(shared.lock()?),
        };
        Ok(Exclusive {
            _shared: shared,
            _local: local,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_sequence(&self, batch: &mut WriteBatch) -> Result<u64> {
        let current = match self.store.get(SEQUENCE)? {
            Some(bytes) => decode::<u64>(&bytes, "sequence")?,
            None => 0,
        };
        batch.put(SEQUENCE.to_vec(), encode(&(current + 1)));
        Ok(current + 1)
    }

    /// Every project, newest first.
    pub fn list(&self) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for (_, value) in self.store.scan_prefix(PROJECT)? {
            out.push(decode::<Project>(&value, "project")?);
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.sequence));
        Ok(out)
    }

    pub fn count(&self) -> usize {
        self.list().map_or(0, |l| l.len())
    }

    pub fn get(&self, project_id: &str) -> Result<Project> {
        match self.store.get(&key(PROJECT, project_id))? {
            Some(bytes) => decode(&bytes, "project"),
            None => Err(ProjectError::NotFound(project_id.to_owned())),
        }
    }

    fn name_taken(&self, name: &str, except: Option<&str>) -> Result<bool> {
        Ok(self
            .list()?
            .iter()
            .any(|p| p.name == name && Some(p.project_id.as_str()) != except))
    }

    pub fn create(
        &self,
        name: &str,
        description: &str,
        embedding_model: &str,
        metadata: &str,
    ) -> Result<Project> {
        let _writing = self.exclusive()?;
        if self.name_taken(name, None)? {
            return Err(ProjectError::NameTaken(name.to_owned()));
        }
        let now = iso_naive(SystemTime::now());
        let mut batch = WriteBatch::default();
        let project = Project {
            project_id: uuid_v4(),
            name: name.to_owned(),
            description: description.to_owned(),
            embedding_model: embedding_model.to_owned(),
            created_at: now.clone(),
            updated_at: now,
            metadata: metadata.to_owned(),
            sequence: self.next_sequence(&mut batch)?,
        };
        batch.put(key(PROJECT, &project.project_id), encode(&project));
        self.store.write(batch)?;
        Ok(project)
    }

    pub fn update(&self, project_id: &str, update: ProjectUpdate) -> Result<Project> {
        let _writing = self.exclusive()?;
        let mut project = self.get(project_id)?;
        if let Some(name) = update.name {
            if self.name_taken(&name, Some(project_id))? {
                return Err(ProjectError::NameTaken(name));
            }
            project.name = name;
        }
        if let Some(description) = update.description {
            project.description = description;
        }
        if let Some(model) = update.embedding_model {
            project.embedding_model = model;
        }
        if let Some(metadata) = update.metadata {
            project.metadata = metadata;
        }
        project.updated_at = iso_naive(SystemTime::now());
        let mut batch = WriteBatch::default();
        batch.put(key(PROJECT, project_id), encode(&project));
        self.store.write(batch)?;
        Ok(project)
    }

    /// Deletes the project, its keys, its document metadata and its index.
    pub fn delete(&self, project_id: &str) -> Result<()> {
        let _writing = self.exclusive()?;
        self.get(project_id)?;
        let mut batch = WriteBatch::default();
        self.delete_records(project_id, &mut batch)?;
        // The record goes first: a crash after it leaves an orphaned directory, never a
        // project without its index.
        let log = vec![LogOp::Drop {
            project_id: project_id.to_owned(),
        }];
        self.store.write_with_log(batch, log)?;
        self.forget_index(project_id)
    }

    /// Adds the removal of a project's records (project, document metadata, keys) to `batch`.
    fn delete_records(&self, project_id: &str, batch: &mut WriteBatch) -> Result<()> {
        batch.delete(key(PROJECT, project_id));
        for (k, _) in self.store.scan_prefix(&doc_prefix(project_id))? {
            batch.delete(k);
        }
        for (k, value) in self.store.scan_prefix(KEY)? {
            let api_key: ApiKey = decode(&value, "api key")?;
            if api_key.project_id == project_id {
                batch.delete(k);
                batch.delete(key(KEY_HASH, &api_key.key_hash));
                batch.delete(key(LAST_USED, &api_key.key_id));
            }
        }
        Ok(())
    }

    /// Closes a removed project's index and deletes its directory.
    fn forget_index(&self, project_id: &str) -> Result<()> {
        self.indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(project_id);
        self.replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(project_id);
        self.confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(project_id);
        let dir = self.index_dir(project_id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|err| {
                mneme_store::Error::Io(format!("removing {}: {err}", dir.display()))
            })?;
        }
        Ok(())
    }

    /// A fresh project id and its staging directory, removed when dropped uninstalled.
    fn stage(&self) -> Result<Staged> {
        let project_id = uuid_v4();
        let dir = self.dir.join(format!("{STAGING}{project_id}"));
        std::fs::create_dir(&dir)
            .map_err(|err| mneme_store::Error::Io(format!("creating {}: {err}", dir.display())))?;
        Ok(Staged {
            project_id,
            dir,
            installed: false,
        })
    }

    /// The registry batch that adds project `project_id` with its document metadata and, with
    /// `overwrite`, removes the records of the project of the same name (returned too); the
    /// caller holds the registry ([`Projects::exclusive`]).
    fn new_project_records(
        &self,
        project_id: String,
        fields: NewProject,
        doc_metadata: Vec<(String, String)>,
        overwrite: bool,
    ) -> Result<(Project, WriteBatch, Option<Project>)> {
        let replaced = self.list()?.into_iter().find(|p| p.name == fields.name);
        if replaced.is_some() && !overwrite {
            return Err(ProjectError::NameTaken(fields.name));
        }
        let now = iso_naive(SystemTime::now());
        let mut batch = WriteBatch::default();
        let project = Project {
            project_id,
            name: fields.name,
            description: fields.description,
            embedding_model: fields.embedding_model,
            created_at: now.clone(),
            updated_at: now,
            metadata: fields.metadata,
            sequence: self.next_sequence(&mut batch)?,
        };
        batch.put(key(PROJECT, &project.project_id), encode(&project));
        for (doc_id, metadata) in doc_metadata {
            let mut k = doc_prefix(&project.project_id);
            k.extend_from_slice(doc_id.as_bytes());
            batch.put(k, metadata.into_bytes());
        }
        if let Some(old) = &replaced {
            self.delete_records(&old.project_id, &mut batch)?;
        }
        Ok((project, batch, replaced))
    }

    /// Cluster mode's import: one transaction adds the project, its document metadata and
    /// its documents as the first generation of its log and, with `overwrite`, removes the
    /// project of the same name; every node's replica then indexes the documents.
    fn install_shared(
        &self,
        fields: NewProject,
        documents: Vec<NewDocument>,
        doc_metadata: Vec<(String, String)>,
        overwrite: bool,
    ) -> Result<Project> {
        let project = {
            let _writing = self.exclusive()?;
            let (project, batch, replaced) =
                self.new_project_records(uuid_v4(), fields, doc_metadata, overwrite)?;
            let mut log = vec![LogOp::Append {
                project_id: project.project_id.clone(),
                requires: key(PROJECT, &project.project_id),
                documents,
            }];
            if let Some(old) = &replaced {
                log.push(LogOp::Drop {
                    project_id: old.project_id.clone(),
                });
            }
            self.store.write_with_log(batch, log)?;
            if let Some(old) = replaced {
                let _ = self.forget_index(&old.project_id);
            }
            project
        };
        // This node's replica indexes the import before the import is answered.
        self.index_with_report(&project.project_id, true)?;
        Ok(project)
    }

    /// Swaps a staged project in: its directory moves to its place, then one registry
    /// transaction adds it (with its document metadata) and, with `overwrite`, removes the
    /// project of the same name; that project's directory is deleted last.
    fn install(
        &self,
        mut staged: Staged,
        fields: NewProject,
        doc_metadata: Vec<(String, String)>,
        overwrite: bool,
    ) -> Result<Project> {
        let _writing = self.exclusive()?;
        let (project, batch, replaced) =
            self.new_project_records(staged.project_id.clone(), fields, doc_metadata, overwrite)?;
        // Until the registry names it, the moved directory is unused: a crash here leaves an
        // orphan, never a project without its index.
        let target = self.index_dir(&project.project_id);
        let io = |what: &str, err: std::io::Error| {
            mneme_store::Error::Io(format!("{what} {}: {err}", target.display()))
        };
        std::fs::rename(&staged.dir, &target).map_err(|err| io("moving an import to", err))?;
        staged.dir.clone_from(&target);
        sync_dir(&self.dir).map_err(|err| io("syncing the directory of", err))?;
        self.store.write(batch)?;
        staged.installed = true;
        if let Some(old) = replaced {
            if let Err(err) = self.forget_index(&old.project_id) {
                tracing::warn!(
                    "the replaced project {} is left on disk: {err}",
                    old.project_id
                );
            }
        }
        Ok(project)
    }

    /// Opens (creating) an index in `dir` with the shared embedding model.
    fn open_index(&self, dir: &Path) -> Result<KnowledgeBase> {
        let kb = KnowledgeBase::open(dir, kb_config(&self.settings))?;
        let embedder = {
            let mut shared = self.embedder.lock().unwrap_or_else(|p| p.into_inner());
            if shared.is_none() {
                *shared = Some(crate::knowledge::embedder(&self.settings)?);
            }
            shared.clone().flatten()
        };
        Ok(match embedder {
            Some(model) => kb.with_embedder(model),
            None => kb,
        })
    }

    fn index_dir(&self, project_id: &str) -> PathBuf {
        self.dir.join(project_id)
    }

    /// The project's index, opened on first use. In cluster mode it is first brought up to
    /// the shared log's last generation, so that it answers with every ingest acknowledged
    /// before this call, on any node.
    ///
    /// While this node is already applying the log to the project (a large ingest), the
    /// index answers as it is, the way an embedded index answers from its previous generation
    /// during an ingest.
    pub fn index(&self, project_id: &str) -> Result<Arc<KnowledgeBase>> {
        self.index_with_report(project_id, false).map(|(kb, _)| kb)
    }

    /// [`Projects::index`], with the report of the log entries it applied (cluster mode);
    /// `wait`: wait for another thread's catch-up instead of answering without it.
    fn index_with_report(
        &self,
        project_id: &str,
        wait: bool,
    ) -> Result<(Arc<KnowledgeBase>, Option<IngestReport>)> {
        let asked = Instant::now();
        if !wait && !self.max_staleness.is_zero() {
            let recent = self
                .confirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(project_id)
                .is_some_and(|at| asked.duration_since(*at) < self.max_staleness);
            if recent {
                if let Some(kb) = self.replica_held(project_id) {
                    return Ok((kb, None));
                }
            }
        }
        if let Err(err) = self.get(project_id) {
            if matches!(err, ProjectError::NotFound(_)) && self.is_shared() {
                // Removed through another node: drop this node's replica.
                let _ = self.forget_index(project_id);
            }
            return match (err, self.replica_held(project_id)) {
                // The shared registry is out of reach: the replica answers as it is.
                (ProjectError::Unavailable(why), Some(kb)) => {
                    tracing::warn!("cluster: {why}; project {project_id} answers from its replica");
                    Ok((kb, None))
                }
                (err, _) => Err(err),
            };
        }
        let kb = {
            let mut indexes = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
            match indexes.get(project_id) {
                Some(kb) => kb.clone(),
                None => {
                    let kb = Arc::new(self.open_index(&self.index_dir(project_id))?);
                    indexes.insert(project_id.to_owned(), kb.clone());
                    kb
                }
            }
        };
        let report = match &self.store {
            Registry::Local(_) => None,
            Registry::Shared(shared) => match self.catch_up(shared.as_ref(), project_id, &kb, wait)
            {
                Ok(report) => {
                    self.confirmed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(project_id.to_owned(), asked);
                    report
                }
                Err(ProjectError::Unavailable(why)) if self.replica_held(project_id).is_some() => {
                    tracing::warn!("cluster: {why}; project {project_id} answers from its replica");
                    None
                }
                Err(err) => return Err(err),
            },
        };
        Ok((kb, report))
    }

    /// The index of a project this node already follows (cluster mode), whatever its lag.
    fn replica_held(&self, project_id: &str) -> Option<Arc<KnowledgeBase>> {
        let followed = self
            .replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(project_id)
            .is_some_and(|applied| *applied.lock().unwrap_or_else(|p| p.into_inner()) > 0);
        if !followed {
            return None;
        }
        self.indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(project_id)
            .cloned()
    }

    /// Applies the generations of the shared log this node's replica lacks; the report of
    /// what it applied, if anything.
    fn catch_up(
        &self,
        shared: &dyn SharedRegistry,
        project_id: &str,
        kb: &KnowledgeBase,
        wait: bool,
    ) -> Result<Option<IngestReport>> {
        let replica = self.replica(project_id);
        let latest = shared.generation(project_id)?;
        let mut applied = if wait {
            replica.lock().unwrap_or_else(|p| p.into_inner())
        } else {
            match replica.try_lock() {
                Ok(applied) => applied,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        };
        apply_log(shared, project_id, kb, &mut applied, latest)
    }

    /// The replay lock and applied generation of this node's replica of a project.
    fn replica(&self, project_id: &str) -> Replica {
        self.replicas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(project_id.to_owned())
            .or_default()
            .clone()
    }

    /// Adds (or replaces) documents and records their metadata (JSON text per document).
    pub fn ingest(
        &self,
        project_id: &str,
        documents: Vec<(NewDocument, String)>,
    ) -> Result<IngestReport> {
        let kb = self.index(project_id)?;
        let mut batch = WriteBatch::default();
        let mut docs = Vec::with_capacity(documents.len());
        for (doc, metadata) in documents {
            let mut k = doc_prefix(project_id);
            k.extend_from_slice(doc.doc_id.as_bytes());
            batch.put(k, metadata.into_bytes());
            docs.push(doc);
        }
        if let Registry::Shared(shared) = &self.store {
            // The log is the record: once it commits, every node's replica indexes the
            // documents. This one does at once, holding its replay lock from before the write,
            // so that it reports on this request's documents (a query meanwhile answers from
            // the replica as it is).
            let paths: std::collections::HashSet<PathBuf> =
                docs.iter().map(|d| PathBuf::from(&d.path)).collect();
            let replica = self.replica(project_id);
            let mut applied = replica.lock().unwrap_or_else(|p| p.into_inner());
            let log = vec![LogOp::Append {
                project_id: project_id.to_owned(),
                requires: key(PROJECT, project_id),
                documents: docs,
            }];
            self.store.write_with_log(batch, log)?;
            let latest = shared.generation(project_id)?;
            let mut report = apply_log(shared.as_ref(), project_id, &kb, &mut applied, latest)?
                .unwrap_or_default();
            report.problems.retain(|(path, _)| paths.contains(path));
            return Ok(report);
        }
        let report = kb.put(docs, &NoProgress)?;
        // Metadata of a document that failed to convert is kept: it names what was sent.
        self.store.write(batch)?;
        Ok(report)
    }

    /// Metadata (JSON text) of every document of a project, by doc_id.
    pub fn document_metadata(&self, project_id: &str) -> Result<HashMap<String, String>> {
        let prefix = doc_prefix(project_id);
        let mut out = HashMap::new();
        for (k, v) in self.store.scan_prefix(&prefix)? {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.insert(id, String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }

    /// Creates a key; returns the record and the raw key (shown once).
    pub fn create_key(
        &self,
        project_id: &str,
        name: &str,
        scopes: &[Scope],
        expires_days: Option<u64>,
        created_by: Option<String>,
    ) -> Result<(ApiKey, String)> {
        let _writing = self.exclusive()?;
        self.get(project_id)?;
        let raw = format!("kb_{}", token_urlsafe(32));
        let now = SystemTime::now();
        let expires = expires_days.map(|days| now + Duration::from_secs(days * 86_400));
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let mut batch = WriteBatch::default();
        let record = ApiKey {
            key_id: token_urlsafe(16),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            key_hash: hash_key(&raw),
            scopes,
            created_at: iso_naive(now),
            expires_at: expires.map(iso_naive),
            expires_unix: expires.map(unix),
            revoked: false,
            last_used_at: None,
            last_used_unix: None,
            created_by,
            sequence: self.next_sequence(&mut batch)?,
        };
        batch.put(key(KEY, &record.key_id), encode(&record));
        batch.put(
            key(KEY_HASH, &record.key_hash),
            record.key_id.clone().into_bytes(),
        );
        self.store.write(batch)?;
        Ok((record, raw))
    }

    /// The keys of a project, newest first.
    pub fn keys(&self, project_id: &str) -> Result<Vec<ApiKey>> {
        self.get(project_id)?;
        let mut out = Vec::new();
        for (_, value) in self.store.scan_prefix(KEY)? {
            let mut record: ApiKey = decode(&value, "api key")?;
            if record.project_id == project_id {
                self.overlay_last_use(&mut record)?;
                out.push(record);
            }
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.sequence));
        Ok(out)
    }

    /// The key's last use, kept under its own registry key (so that noting a use never
    /// rewrites the record, and cannot undo a revocation written meanwhile by another node).
    fn overlay_last_use(&self, record: &mut ApiKey) -> Result<()> {
        if let Some(bytes) = self.store.get(&key(LAST_USED, &record.key_id))? {
            let (at, unix): (String, u64) = decode(&bytes, "api key use")?;
            record.last_used_at = Some(at);
            record.last_used_unix = Some(unix);
        }
        Ok(())
    }

    /// Revokes a key (any project's, as KnowledgeBeast does).
    pub fn revoke_key(&self, key_id: &str) -> Result<()> {
        let _writing = self.exclusive()?;
        let k = key(KEY, key_id);
        let Some(bytes) = self.store.get(&k)? else {
            return Err(ProjectError::KeyNotFound(key_id.to_owned()));
        };
        let mut record: ApiKey = decode(&bytes, "api key")?;
        record.revoked = true;
        let mut batch = WriteBatch::default();
        batch.put(k, encode(&record));
        self.store.write(batch)?;
        Ok(())
    }

    /// The live (not revoked, not expired) key record for a raw key; notes its use (at most
    /// once a minute, so that checking a key is not a disk write per request).
    pub fn verify_key(&self, raw: &str) -> Result<Option<ApiKey>> {
        let Some(key_id) = self.store.get(&key(KEY_HASH, &hash_key(raw)))? else {
            return Ok(None);
        };
        let key_id = String::from_utf8_lossy(&key_id).into_owned();
        let Some(bytes) = self.store.get(&key(KEY, &key_id))? else {
            return Ok(None);
        };
        let mut record: ApiKey = decode(&bytes, "api key")?;
        let now = SystemTime::now();
        if record.revoked || record.expires_unix.is_some_and(|at| unix(now) >= at) {
            return Ok(None);
        }
        self.overlay_last_use(&mut record)?;
        if record.last_used_unix.is_none_or(|at| unix(now) >= at + 60) {
            record.last_used_at = Some(iso_naive(now));
            record.last_used_unix = Some(unix(now));
            let mut batch = WriteBatch::default();
            batch.put(
                key(LAST_USED, &key_id),
                encode(&(iso_naive(now), unix(now))),
            );
            self.store.write_deferred(batch)?;
        }
        Ok(Some(record))
    }
}

/// Indexes the documents of a project's log after `*applied` up to `latest` into `kb`, page
/// by page (a document replaced by a later generation of the page is indexed once, as it ends
/// up); the report of the last page.
fn apply_log(
    shared: &dyn SharedRegistry,
    project_id: &str,
    kb: &KnowledgeBase,
    applied: &mut u64,
    latest: u64,
) -> Result<Option<IngestReport>> {
    let mut report = None;
    while *applied < latest {
        let (documents, last) = shared.documents_since(project_id, *applied, latest)?;
        if last <= *applied {
            break;
        }
        let mut latest_of: HashMap<String, usize> = HashMap::new();
        for (i, doc) in documents.iter().enumerate() {
            latest_of.insert(doc.doc_id.clone(), i);
        }
        let documents: Vec<NewDocument> = documents
            .into_iter()
            .enumerate()
            .filter(|(i, doc)| latest_of.get(&doc.doc_id) == Some(i))
            .map(|(_, doc)| doc)
            .collect();
        if !documents.is_empty() {
            report = Some(kb.put(documents, &NoProgress)?);
        }
        *applied = last;
    }
    Ok(report)
}

/// The loaders of the registry's records, for the fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    use super::{ApiKey, Project, decode};

    /// Decodes `bytes` as each kind of registry record (project, key, key use, sequence); how
    /// many kinds accepted them. A decode answers, never panics.
    pub fn decode_records(bytes: &[u8]) -> usize {
        [
            decode::<Project>(bytes, "project").is_ok(),
            decode::<ApiKey>(bytes, "api key").is_ok(),
            decode::<(String, u64)>(bytes, "api key use").is_ok(),
            decode::<u64>(bytes, "sequence").is_ok(),
        ]
        .into_iter()
        .filter(|ok| *ok)
        .count()
    }
}

/// The fields of a project about to be created.
struct NewProject {
    name: String,
    description: String,
    embedding_model: String,
    metadata: String,
}

/// A project being built in a directory of its own; the directory goes when this is dropped,
/// unless the project was installed.
struct Staged {
    project_id: String,
    dir: PathBuf,
    installed: bool,
}

impl Staged {
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.installed {
            return;
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => tracing::warn!(
                "removing the staging directory {}: {err}",
                self.dir.display()
            ),
            _ => {}
        }
    }
}

/// Removes what imports interrupted by a crash left behind.
fn remove_staging_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(STAGING) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A random (version 4) UUID in its hyphenated form.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KbSettings {
        crate::config::load(None, &|_| None, &[]).unwrap().kb
    }

    #[test]
    fn base64_matches_python() {
        // base64.urlsafe_b64encode(bytes([0, 255, 254, 1])).rstrip(b"=")
        assert_eq!(base64_url(&[0, 255, 254, 1]), "AP_-AQ");
        assert_eq!(base64_url(b"hello"), "aGVsbG8");
        assert_eq!(token_urlsafe(32).len(), 43);
        assert_eq!(format!("kb_{}", token_urlsafe(32)).len(), 46);
    }

    #[test]
    fn sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn projects_keys_and_documents_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (id, raw) = {
            let projects = Projects::open(dir.path(), &settings()).unwrap();
            let a = projects
                .create("alpha", "first", "all-MiniLM-L6-v2", "{}")
                .unwrap();
            let b = projects.create("beta", "", "m", "{\"k\":1}").unwrap();
            assert!(matches!(
                projects.create("alpha", "", "m", "{}"),
                Err(ProjectError::NameTaken(_))
            ));
            let names: Vec<String> = projects
                .list()
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect();
            assert_eq!(names, ["beta", "alpha"], "newest first");
            assert!(matches!(
                projects.update(
                    &b.project_id,
                    ProjectUpdate {
                        name: Some("alpha".into()),
                        ..Default::default()
                    }
                ),
                Err(ProjectError::NameTaken(_))
            ));
            let doc = NewDocument {
                doc_id: "doc_1".into(),
                path: "inline_content".into(),
                kb_dir: String::new(),
                name: "Unknown".into(),
                format: mneme_kb::convert::Format::Text,
                bytes: b"the quick brown fox".to_vec(),
            };
            let report = projects
                .ingest(&a.project_id, vec![(doc, "{\"source\":\"t\"}".into())])
                .unwrap();
            assert_eq!(report.documents, 1);
            let (record, raw) = projects
                .create_key(
                    &a.project_id,
                    "ci",
                    &[Scope::Write, Scope::Read, Scope::Write],
                    Some(30),
                    None,
                )
                .unwrap();
            assert_eq!(record.scopes, [Scope::Read, Scope::Write]);
            assert!(record.key_hash != raw && record.key_hash == hash_key(&raw));
            (a.project_id, raw)
        };
        let projects = Projects::open(dir.path(), &settings()).unwrap();
        assert_eq!(projects.get(&id).unwrap().name, "alpha");
        let kb = projects.index(&id).unwrap();
        assert_eq!(kb.stats().documents, 1);
        assert_eq!(
            projects.document_metadata(&id).unwrap()["doc_1"],
            "{\"source\":\"t\"}"
        );
        let record = projects.verify_key(&raw).unwrap().expect("key is live");
        assert!(
            record.allows(Scope::Read)
                && record.allows(Scope::Write)
                && !record.allows(Scope::Admin)
        );
        assert!(projects.verify_key("kb_not-a-key").unwrap().is_none());
        projects.revoke_key(&record.key_id).unwrap();
        assert!(
            projects.verify_key(&raw).unwrap().is_none(),
            "revoked keys are refused"
        );
        projects.delete(&id).unwrap();
        assert!(matches!(projects.get(&id), Err(ProjectError::NotFound(_))));
        assert!(!dir.path().join(&id).exists());
        assert!(projects.keys(&id).is_err());
    }
}
