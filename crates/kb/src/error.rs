//! Errors of the knowledge-base engine, each with a kind that callers map to exit codes or
//! HTTP statuses.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path given to ingest does not exist.
    #[error("{}: no such file or directory", .0.display())]
    MissingPath(PathBuf),
    /// Another process (or another ingest in this one) holds the index writer.
    #[error("another ingest is writing to {}; wait for it to finish", .0.display())]
    Busy(PathBuf),
    /// The query is not acceptable (empty, too long, or with a forbidden character).
    #[error("{0}")]
    InvalidQuery(String),
    /// A stored file is unreadable or inconsistent.
    #[error("{0}")]
    Corrupt(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// Vector or hybrid ranking was asked for but there is no model or no vectors.
    #[error("{0}")]
    NoVectors(String),
    /// The embedding model failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// A store the index is shared through (cluster mode) is out of reach; retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// What went wrong, without the details: the part callers branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    MissingPath,
    Busy,
    InvalidQuery,
    Corrupt,
    Io,
    Index,
    NoVectors,
    Embedding,
    Unavailable,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingPath(_) => ErrorKind::MissingPath,
            Error::Busy(_) => ErrorKind::Busy,
            Error::InvalidQuery(_) => ErrorKind::InvalidQuery,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io { .. } => ErrorKind::Io,
            Error::Index(_) => ErrorKind::Index,
            Error::NoVectors(_) => ErrorKind::NoVectors,
            Error::Embedding(_) => ErrorKind::Embedding,
            Error::Unavailable(_) => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
