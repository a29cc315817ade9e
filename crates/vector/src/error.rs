/// Everything that can go wrong in this crate. No function panics on bad input instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A vector or query does not have the index's dimension.
    #[error("dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch { expected: usize, actual: usize },
    /// A vector or query holds a NaN or an infinity.
    #[error("vector contains a non-finite value")]
    NonFinite,
    /// A dimension of zero, or one too large for the format.
    #[error("invalid dimension {0}")]
    InvalidDimension(usize),
    /// The store is full (ids are `u32`).
    #[error("too many vectors (ids are u32)")]
    Capacity,
    /// An HNSW parameter is out of range.
    #[error("invalid HNSW parameter: {0}")]
    InvalidParams(&'static str),
    /// `Hnsw::insert` was given an id other than the next one, or one with no vector.
    #[error("cannot insert id {id}: the graph holds {len} nodes and the store {available} vectors")]
    OutOfOrder {
        id: u32,
        len: usize,
        available: usize,
    },
    /// A graph was used with a vector store that does not match it.
    #[error("graph does not match the vector store: {0}")]
    GraphMismatch(&'static str),
    /// The bytes end before the structure they describe.
    #[error("truncated data: {0}")]
    Truncated(&'static str),
    /// The bytes are not of the expected kind or version, or fail validation.
    #[error("corrupt data: {0}")]
    Corrupt(&'static str),
}
