//! Project archives: a project's description, documents and document metadata in one file,
//! to move a project between servers or keep a copy.
//!
//! Two formats hold the same content: ZIP, KnowledgeBeast 2.x's export layout
//! (`manifest.json`, `project.json`, `documents.json`, deflated), and JSON, the three entries
//! as the `manifest`, `project` and `documents` fields of one document.
//!
//! An export is written to a temporary file, synced and renamed into place. An import builds
//! the new project completely in a staging directory and swaps it in with one registry
//! transaction, so an import that fails, with `overwrite` too, leaves every project as it was.
//! Reading an archive is bounded by [`ArchiveLimits`]: the bytes actually decompressed are
//! counted (sizes declared in ZIP headers are not trusted), and the JSON is parsed from that
//! bounded stream into strings and compact text, never into a tree of a whole entry.
//! Archives carry no embeddings: an import embeds again when a model is configured.

mod bounded;
mod shapes;

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mneme_kb::convert::Format;
use mneme_kb::{IngestProgress, NewDocument};
use serde::de::DeserializeSeed;
use zip::CompressionMethod;

pub use bounded::{ArchiveLimits, Limit};

use super::{Project, ProjectError, Projects};
use bounded::Bounded;
use shapes::{DocMeta, DocumentsIn, DocumentsSeed, JsonArchiveIn, ManifestIn, ProjectIn};

/// The version written to (and, as `2.x`, required in) manifests: KnowledgeBeast's format.
pub const EXPORT_VERSION: &str = "2.3.0";

/// How messages name a JSON archive (it has no entries).
const JSON_ARCHIVE: &str = "the archive";

/// What an archive file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Zip,
    Json,
}

impl ArchiveFormat {
    pub fn parse(name: &str) -> Option<ArchiveFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "zip" => Some(ArchiveFormat::Zip),
            "json" => Some(ArchiveFormat::Json),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "zip",
            ArchiveFormat::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "application/zip",
            ArchiveFormat::Json => "application/json",
        }
    }
}

/// How an import names its project.
#[derive(Clone, Debug)]
pub struct ImportConfig {
    /// The new project's name; `None` keeps the archive's.
    pub new_name: Option<String>,
    /// Whether a project of the same name is replaced (otherwise the import is refused).
    pub overwrite: bool,
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    pub project: Project,
    pub document_count: usize,
}

/// An export written under `<projects_dir>/exports`.
#[derive(Clone, Debug)]
pub struct ExportFile {
    pub path: PathBuf,
    pub document_count: usize,
    pub size_bytes: u64,
}

/// What an import created.
#[derive(Clone, Debug)]
pub struct Imported {
    pub project: Project,
    pub document_count: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A limit of [`ArchiveLimits`]: `what` ran past `max`.
    #[error(
        "{what} more than {max} {}, the limit {} sets; raise {} ({} in the config file) to import it",
        limit.unit(),
        limit.setting(),
        limit.setting(),
        limit.config_key()
    )]
    TooLarge {
        limit: Limit,
        max: u64,
        what: String,
    },
    /// Not an archive, or not one this build reads.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Project(#[from] ProjectError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveErrorKind {
    TooLarge,
    Invalid,
    Project,
}

impl ArchiveError {
    pub fn kind(&self) -> ArchiveErrorKind {
        match self {
            ArchiveError::TooLarge { .. } => ArchiveErrorKind::TooLarge,
            ArchiveError::Invalid(_) => ArchiveErrorKind::Invalid,
            ArchiveError::Project(_) => ArchiveErrorKind::Project,
        }
    }
}

/// Writes the archive of a project to `out`.
pub fn write_archive<W: Write + Seek>(
    projects: &Projects,
    project_id: &str,
    format: ArchiveFormat,
    out: W,
) -> Result<Exported, ProjectError> {
    let project = projects.get(project_id)?;
    let kb = projects.index(project_id)?;
    let stored = projects.document_metadata(project_id)?;
    let ids = kb.doc_ids();
    let mut documents = Vec::with_capacity(ids.len());
    let mut metadatas = Vec::with_capacity(ids.len());
    for id in &ids {
        documents.push(kb.document_text(id)?.unwrap_or_default());
        metadatas.push(shapes::json_or_empty_object(
            stored.get(id).map_or("", String::as_str),
        ));
    }
    let manifest = shapes::Manifest {
        version: EXPORT_VERSION,
        export_date: crate::time::iso(SystemTime::now()),
        project_id: &project.project_id,
        project_name: &project.name,
        document_count: ids.len(),
        has_embeddings: false,
        embedding_model: &project.embedding_model,
    };
    let entry = shapes::ProjectEntry::of(&project);
    let docs = shapes::DocumentsEntry {
        ids: &ids,
        documents: &documents,
        metadatas: &metadatas,
        count: ids.len(),
    };
    let written = match format {
        ArchiveFormat::Zip => write_zip(out, &manifest, &entry, &docs),
        ArchiveFormat::Json => {
            let archive = shapes::JsonArchive {
                manifest: &manifest,
                project: &entry,
                documents: &docs,
            };
            let mut out = BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, &archive)
                .map_err(io::Error::from)
                .and_then(|()| out.flush())
        }
    };
    written.map_err(|err| io_error(format!("writing the export of {project_id}: {err}")))?;
    Ok(Exported {
        document_count: ids.len(),
        project,
    })
}

/// Writes the archive of a project to `<projects_dir>/exports/<id>_export_<unix>.<ext>`,
/// durably: a temporary file, synced, renamed into place, then the directory synced.
pub fn export_file(
    projects: &Projects,
    project_id: &str,
    format: ArchiveFormat,
) -> Result<ExportFile, ProjectError> {
    // Before any file is made: the id names the file.
    projects.get(project_id)?;
    let dir = projects.dir().join("exports");
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("{project_id}_export_{unix}.{}", format.extension());
    let path = dir.join(&name);
    // Unique, so that two exports in the same second never write one file.
    let tmp = dir.join(format!(".{name}.{}.tmp", super::uuid_v4()));
    let io = |what: &str, err: io::Error| io_error(format!("{what} {}: {err}", path.display()));
    std::fs::create_dir_all(&dir).map_err(|err| io("creating the directory of", err))?;
    let written = (|| {
        let file = File::create(&tmp).map_err(|err| io("creating a temporary file for", err))?;
        let mut out = BufWriter::new(file);
        let exported = write_archive(projects, project_id, format, &mut out)?;
        let file = out
            .into_inner()
            .map_err(|err| io("writing", err.into_error()))?;
        file.sync_all().map_err(|err| io("syncing", err))?;
        std::fs::rename(&tmp, &path).map_err(|err| io("renaming into place", err))?;
        super::sync_dir(&dir).map_err(|err| io("syncing the directory of", err))?;
        let size_bytes = file.metadata().map_err(|err| io("reading", err))?.len();
        Ok(ExportFile {
            path: path.clone(),
            document_count: exported.document_count,
            size_bytes,
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Imports an archive (ZIP or JSON, told apart by their first bytes) as a new project;
/// `progress` follows the ingest of its documents.
///
/// The project is built completely under a staging directory, then swapped in with one
/// registry transaction that also removes the project it replaces (`overwrite`); only then
/// is the replaced project's directory deleted. Any failure before the swap leaves every
/// project as it was.
pub fn import<R: Read + Seek>(
    projects: &Projects,
    mut archive: R,
    config: &ImportConfig,
    limits: &ArchiveLimits,
    progress: &dyn IngestProgress,
) -> Result<Imported, ArchiveError> {
    let size = archive
        .seek(SeekFrom::End(0))
        .and_then(|size| archive.seek(SeekFrom::Start(0)).map(|_| size))
        .map_err(|err| invalid(format!("the archive is unreadable: {err}")))?;
    if size > limits.max_archive_bytes {
        return Err(too_large(Limit::ArchiveBytes, limits, "the archive is"));
    }
    let mut total_left = limits.max_bytes;
    let too_many_documents = Cell::new(false);
    let documents_seed = DocumentsSeed {
        max_documents: limits.max_documents,
        exceeded: &too_many_documents,
    };
    let reading = Reading {
        limits,
        too_many_documents: &too_many_documents,
    };
    if looks_like_json(&mut archive)? {
        let mut bounded = Bounded::new(archive, None, &mut total_left);
        let parsed: JsonArchiveIn =
            reading.parse(&mut bounded, JSON_ARCHIVE, documents_seed.archive())?;
        let manifest = parsed
            .manifest
            .ok_or_else(|| invalid("the archive has no manifest".into()))?;
        check_version(&manifest)?;
        let project = parsed
            .project
            .ok_or_else(|| invalid("the archive has no project".into()))?;
        let documents = parsed
            .documents
            .ok_or_else(|| invalid("the archive has no documents".into()))?;
        return build(projects, project, config, progress, || Ok(documents));
    }
    let mut zip = zip::ZipArchive::new(archive)
        .map_err(|err| invalid(format!("not a ZIP archive: {err}")))?;
    if zip.len() as u64 > limits.max_entries {
        return Err(too_large(Limit::Entries, limits, "the archive has"));
    }
    let manifest: ManifestIn =
        reading.zip_entry(&mut zip, "manifest.json", &mut total_left, PhantomData)?;
    check_version(&manifest)?;
    let project: ProjectIn =
        reading.zip_entry(&mut zip, "project.json", &mut total_left, PhantomData)?;
    build(projects, project, config, progress, || {
        reading.zip_entry(&mut zip, "documents.json", &mut total_left, documents_seed)
    })
}

fn io_error(message: String) -> ProjectError {
    ProjectError::Store(mneme_store::Error::Io(message))
}

fn invalid(message: String) -> ArchiveError {
    ArchiveError::Invalid(message)
}

fn too_large(limit: Limit, limits: &ArchiveLimits, what: &str) -> ArchiveError {
    ArchiveError::TooLarge {
        limit,
        max: limit.of(limits),
        what: what.to_owned(),
    }
}

fn write_zip<W: Write + Seek>(
    out: W,
    manifest: &shapes::Manifest<'_>,
    project: &shapes::ProjectEntry<'_>,
    documents: &shapes::DocumentsEntry<'_>,
) -> io::Result<()> {
    let mut zip = zip::ZipWriter::new(out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let entries: [(&str, &dyn erased::Pretty); 3] = [
        ("manifest.json", manifest),
        ("project.json", project),
        ("documents.json", documents),
    ];
    for (name, value) in entries {
        zip.start_file(name, options).map_err(io::Error::other)?;
        value.write_pretty(&mut zip)?;
    }
    zip.finish().map_err(io::Error::other)?;
    Ok(())
}

/// Pretty JSON of entries of different types, written one after the other.
mod erased {
    use std::io::{self, Write};

    pub trait Pretty {
        fn write_pretty(&self, out: &mut dyn Write) -> io::Result<()>;
    }

    impl<T: serde::Serialize> Pretty for T {
        fn write_pretty(&self, out: &mut dyn Write) -> io::Result<()> {
            // serde_json writes token by token: batch them before the compressor.
            let mut out = io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, self).map_err(io::Error::from)?;
            out.flush()
        }
    }
}

/// Whether the archive starts like a JSON document (`{` after any whitespace) rather than a
/// ZIP; leaves the archive at its start.
fn looks_like_json<R: Read + Seek>(archive: &mut R) -> Result<bool, ArchiveError> {
    let mut head = [0u8; 64];
    let mut n = 0;
    let read = (|| {
        while n < head.len() {
            match archive.read(&mut head[n..])? {
                0 => break,
                got => n += got,
            }
        }
        archive.seek(SeekFrom::Start(0))
    })();
    read.map_err(|err| invalid(format!("the archive is unreadable: {err}")))?;
    Ok(head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{'))
}

fn check_version(manifest: &ManifestIn) -> Result<(), ArchiveError> {
    let version = manifest.version.0.as_deref().unwrap_or_default();
    if version.starts_with("2.") {
        Ok(())
    } else {
        Err(invalid(format!(
            "unsupported export version {version:?} (expected 2.x)"
        )))
    }
}

/// The limits an import reads under, and what tells which one it ran into.
struct Reading<'a> {
    limits: &'a ArchiveLimits,
    too_many_documents: &'a Cell<bool>,
}

impl Reading<'_> {
    /// Parses one ZIP entry from its decompressed bytes, counted against the limits; the
    /// entry's CRC-32 is checked once it is read whole.
    fn zip_entry<T, S, R>(
        &self,
        zip: &mut zip::ZipArchive<R>,
        name: &str,
        total_left: &mut u64,
        seed: S,
    ) -> Result<T, ArchiveError>
    where
        S: for<'de> DeserializeSeed<'de, Value = T>,
        R: Read + Seek,
    {
        let index = zip
            .index_for_name(name)
            .ok_or_else(|| invalid(format!("the archive has no {name}")))?;
        // The raw (compressed) bytes, inflated here: the zip crate's reader stops at the size
        // the header declares, and that size is not to be trusted either way.
        let raw = zip
            .by_index_raw(index)
            .map_err(|err| invalid(format!("{name} is unreadable: {err}")))?;
        if raw.encrypted() {
            return Err(invalid(format!("{name} is encrypted")));
        }
        let expected_crc = raw.crc32();
        let decoded: Box<dyn Read + '_> = match raw.compression() {
            CompressionMethod::Stored => Box::new(raw),
            CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(raw)),
            other => {
                return Err(invalid(format!(
                    "{name} uses a compression this build does not read ({other})"
                )));
            }
        };
        let mut bounded = Bounded::new(decoded, Some(self.limits.max_entry_bytes), total_left);
        let parsed = self.parse(&mut bounded, name, seed)?;
        // The parser stops at the end of the JSON: whatever follows still counts, and the CRC
        // covers it.
        io::copy(&mut bounded, &mut io::sink()).map_err(|err| match bounded.exceeded() {
            Some(limit) => self.exceeded(limit, name),
            None => invalid(format!("{name} is unreadable: {err}")),
        })?;
        if bounded.crc32() != expected_crc {
            return Err(invalid(format!(
                "{name} is corrupt: its CRC-32 does not match the archive's"
            )));
        }
        Ok(parsed)
    }

    /// Parses JSON from the bounded reader; a limit it ran into is a
    /// [`ArchiveError::TooLarge`].
    fn parse<T, S, R>(
        &self,
        bounded: &mut Bounded<'_, R>,
        name: &str,
        seed: S,
    ) -> Result<T, ArchiveError>
    where
        S: for<'de> DeserializeSeed<'de, Value = T>,
        R: Read,
    {
        let parsed = {
            let mut json = serde_json::Deserializer::from_reader(BufReader::new(&mut *bounded));
            seed.deserialize(&mut json)
                .and_then(|value| json.end().map(|()| value))
        };
        parsed.map_err(|err| match bounded.exceeded() {
            Some(limit) => self.exceeded(limit, name),
            None if self.too_many_documents.get() => {
                too_large(Limit::Documents, self.limits, &format!("{name} has"))
            }
            None if err.is_io() => invalid(format!("{name} is unreadable: {err}")),
            None => invalid(format!("{name} is not valid JSON: {err}")),
        })
    }

    fn exceeded(&self, limit: Limit, name: &str) -> ArchiveError {
        let what = match limit {
            Limit::EntryBytes => format!("{name} decompresses to"),
            _ if name == JSON_ARCHIVE => "the archive is".to_owned(),
            _ => "the entries of the archive decompress to".to_owned(),
        };
        too_large(limit, self.limits, &what)
    }
}

/// Builds the project under a staging directory and swaps it in.
fn build(
    projects: &Projects,
    project: ProjectIn,
    config: &ImportConfig,
    progress: &dyn IngestProgress,
    documents: impl FnOnce() -> Result<DocumentsIn, ArchiveError>,
) -> Result<Imported, ArchiveError> {
    let name = config
        .new_name
        .clone()
        .or(project.name.0)
        .ok_or_else(|| invalid("project.json has no name".into()))?;
    // Early, to spare the work; the swap checks again under the registry's lock.
    if !config.overwrite && projects.name_taken(&name, None)? {
        return Err(ProjectError::NameTaken(name).into());
    }
    let documents = documents()?;
    let (batch, metadata) = new_documents(documents)?;
    let document_count = batch.len();
    let fields = super::NewProject {
        name,
        description: project.description.0.unwrap_or_default(),
        embedding_model: project
            .embedding_model
            .0
            .unwrap_or_else(|| "all-MiniLM-L6-v2".to_owned()),
        metadata: project.metadata.0.unwrap_or_else(|| "{}".to_owned()),
    };
    if projects.is_shared() {
        let project = projects.install_shared(fields, batch, metadata, config.overwrite)?;
        return Ok(Imported {
            project,
            document_count,
        });
    }
    let staged = projects.stage()?;
    {
        let kb = projects.open_index(staged.dir())?;
        if document_count > 0 {
            kb.put(batch, progress).map_err(ProjectError::from)?;
        }
        // Dropped here: the index is closed before its directory moves.
    }
    let project = projects.install(staged, fields, metadata, config.overwrite)?;
    Ok(Imported {
        project,
        document_count,
    })
}

/// The documents of `documents.json` and their metadata texts by doc_id.
#[allow(clippy::type_complexity)]
fn new_documents(
    documents: DocumentsIn,
) -> Result<(Vec<NewDocument>, Vec<(String, String)>), ArchiveError> {
    let DocumentsIn {
        ids,
        documents: texts,
        metadatas,
    } = documents;
    if ids.0.len() != texts.0.len() {
        return Err(invalid(
            "documents.json: ids and documents differ in length".into(),
        ));
    }
    let mut metadatas = metadatas.0.into_iter();
    let mut batch = Vec::with_capacity(ids.0.len());
    let mut metadata = Vec::with_capacity(ids.0.len());
    for (id, text) in ids.0.into_iter().zip(texts.0) {
        let meta = metadatas.next().unwrap_or_else(|| DocMeta {
            text: "{}".to_owned(),
            ..DocMeta::default()
        });
        let path = meta.path.unwrap_or_default();
        let format = Format::of_path(Path::new(&path))
            .filter(|f| matches!(f, Format::Code))
            .unwrap_or(Format::Markdown);
        metadata.push((id.0.clone(), meta.text));
        batch.push(NewDocument {
            doc_id: id.0,
            path,
            kb_dir: meta.kb_dir.unwrap_or_default(),
            name: meta.name.unwrap_or_else(|| "Unknown".to_owned()),
            format,
            bytes: text.0.unwrap_or_default().into_bytes(),
        });
    }
    Ok((batch, metadata))
}
