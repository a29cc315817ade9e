use crate::Error;
use crate::codec::{Reader, Writer};

const MAGIC: &[u8; 4] = b"MNVF";
const VERSION: u32 = 1;
/// Upper bound on the dimension accepted from bytes or [`Vectors::new`].
pub const MAX_DIM: usize = 1 << 16;

/// A flat, append-only store of vectors of one dimension. Id `i` is the `i`-th vector pushed;
/// the data lives in one row-major `Vec<f32>` (`data[i*dim..(i+1)*dim]`), which is what the
/// scan in [`crate::exact`] streams through.
///
/// Serialised form ([`Vectors::to_bytes`]): `"MNVF" | version u32 | dim u32 | count u64 |
/// count·dim f32 | xxh3-64`, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    dim: usize,
    data: Vec<f32>,
}

impl Vectors {
    /// An empty store. Panics only on a programming error: `dim` of 0 or above 65,536.
    pub fn new(dim: usize) -> Self {
        assert!(dim > 0 && dim <= MAX_DIM, "invalid dimension {dim}");
        Vectors {
            dim,
            data: Vec::new(),
        }
    }

    /// An empty store with room for `n` vectors.
    pub fn with_capacity(dim: usize, n: usize) -> Self {
        let mut v = Vectors::new(dim);
        v.data.reserve(n.saturating_mul(dim));
        v
    }

    /// Builds a store from row-major data; `data.len()` must be a multiple of `dim`.
    pub fn from_flat(dim: usize, data: Vec<f32>) -> Result<Self, Error> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        if !data.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                actual: data.len(),
            });
        }
        if data.len() / dim > u32::MAX as usize {
            return Err(Error::Capacity);
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite);
        }
        Ok(Vectors { dim, data })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Appends a vector and returns its id.
    pub fn push(&mut self, v: &[f32]) -> Result<u32, Error> {
        self.check(v)?;
        let id = u32::try_from(self.len()).map_err(|_| Error::Capacity)?;
        if id == u32::MAX {
            return Err(Error::Capacity);
        }
        self.data.extend_from_slice(v);
        Ok(id)
    }

    /// The vector with this id, if any.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&[f32]> {
        let start = (id as usize).checked_mul(self.dim)?;
        self.data.get(start..start + self.dim)
    }

    /// The vector with this id; the caller guarantees `id < len()`.
    #[inline]
    pub(crate) fn row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// All vectors, row-major.
    pub fn as_flat(&self) -> &[f32] {
        &self.data
    }

    /// Checks that `v` could be stored here or used as a query: right length, finite.
    pub fn check(&self, v: &[f32]) -> Result<(), Error> {
        if v.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                actual: v.len(),
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite);
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, VERSION, 12 + self.data.len() * 4);
        w.u32(self.dim as u32);
        w.u64(self.len() as u64);
        w.f32s(&self.data);
        w.finish()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, MAGIC, VERSION)?;
        let dim = r.u32("dimension")? as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::Corrupt("dimension out of range"));
        }
        let count = r.u64("count")?;
        let count = usize::try_from(count).map_err(|_| Error::Corrupt("count"))?;
        if count > u32::MAX as usize {
            return Err(Error::Corrupt("count"));
        }
        let n = count.checked_mul(dim).ok_or(Error::Corrupt("count"))?;
        let data = r.f32s(n, "vector data")?;
        r.finish()?;
        Ok(Vectors { dim, data })
    }
}
