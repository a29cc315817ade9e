//! Engine errors as the Python exceptions the originals raise.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};

pyo3::create_exception!(
    _native,
    StoreBusyError,
    pyo3::exceptions::PyRuntimeError,
    "The pattern store is held by another process (args: message, address of the `mneme serve` holding it or None)."
);

/// A knowledge-base error: a bad query is a `ValueError` (KnowledgeBeast's
/// `ValueError("Search terms cannot be empty")`), a missing path `FileNotFoundError`, a
/// failed read `OSError`, the rest `RuntimeError`, each with the engine's message.
pub fn kb(err: mneme_kb::Error) -> PyErr {
    use mneme_kb::ErrorKind;
    let message = err.to_string();
    match err.kind() {
        ErrorKind::InvalidQuery => PyValueError::new_err(message),
        ErrorKind::MissingPath => PyFileNotFoundError::new_err(message),
        ErrorKind::Io => PyOSError::new_err(message),
        ErrorKind::Busy
        | ErrorKind::Corrupt
        | ErrorKind::Index
        | ErrorKind::NoVectors
        | ErrorKind::Embedding
        | ErrorKind::Unavailable => PyRuntimeError::new_err(message),
    }
}

/// A configuration error (a bad `KB_*` or `MNEME_*` value): `ValueError`, as
/// KnowledgeBeastConfig's validation raises.
pub fn config(err: mneme_app::ConfigError) -> PyErr {
    PyValueError::new_err(err.message)
}
