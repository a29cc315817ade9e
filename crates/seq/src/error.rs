//! Errors of the pattern engine.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An observed vector does not have the node's dimension (or the vectors of one
    /// observation differ in length).
    #[error(transparent)]
    Vector(#[from] crate::node::VectorError),
    /// Learning from an empty short-term memory.
    #[error("Cannot learn from empty STM")]
    EmptyStm,
    /// A stored record cannot be read.
    #[error("stored pattern data is damaged: {0}")]
    Corrupt(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

/// What went wrong, for callers that map errors to statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Vector,
    EmptyStm,
    Corrupt,
    Storage,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Vector(_) => ErrorKind::Vector,
            Error::EmptyStm => ErrorKind::EmptyStm,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Storage(_) => ErrorKind::Storage,
        }
    }
}
