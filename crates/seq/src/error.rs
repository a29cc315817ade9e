//! Errors of the pattern engine.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An observed vector does not have the node's dimension (or the vectors of one
    /// observation differ in length).
    #[error(transparent)]
    Vector(#[from] VectorError),
    /// Learning from an empty short-term memory.
    #[error("Cannot learn from empty STM")]
    EmptyStm,
    /// A stored record cannot be read.
    #[error("stored pattern data is damaged: {0}")]
    Corrupt(String),
    #[error("storage failed: {0}")]
    Storage(String),
    /// The shared store cannot be reached (cluster mode); retrying later may work.
    #[error("the pattern store is unavailable: {0}")]
    Unavailable(String),
}

/// What went wrong, for callers that map errors to statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Vector,
    EmptyStm,
    Corrupt,
    Storage,
    Unavailable,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Vector(_) => ErrorKind::Vector,
            Error::EmptyStm => ErrorKind::EmptyStm,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Storage(_) => ErrorKind::Storage,
            Error::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

/// A vector whose length differs from the node's dimension.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("vector dimension mismatch: expected {expected}, got {actual}")]
pub struct VectorError {
    pub expected: usize,
    pub actual: usize,
    /// The `VCTR|` name of the offending vector, when it has one.
    pub vector_name: Option<String>,
}

impl VectorError {
    pub fn named(self, name: &str) -> VectorError {
        VectorError {
            vector_name: Some(name.to_owned()),
            ..self
        }
    }
}
