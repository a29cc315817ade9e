//! The byte layout shared by the serialised structures.
//!
//! Every blob is `magic (4 bytes) | version (u32) | body | xxh3-64 of everything before (u64)`,
//! all integers and floats little-endian. [`Reader::open`] checks the framing and checksum,
//! so a flipped bit anywhere is reported as corruption before the body is interpreted; the
//! body readers still bound-check every read, so even a blob with a forged checksum cannot
//! make the decoder panic or over-allocate.

use crate::Error;
use xxhash_rust::xxh3::xxh3_64;

pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(magic: &[u8; 4], version: u32, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 16);
        buf.extend_from_slice(magic);
        buf.extend_from_slice(&version.to_le_bytes());
        Writer { buf }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32s(&mut self, v: &[f32]) {
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn finish(mut self) -> Vec<u8> {
        let sum = xxh3_64(&self.buf);
        self.buf.extend_from_slice(&sum.to_le_bytes());
        self.buf
    }
}

pub(crate) struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks magic, version and checksum; returns a reader over the body.
    pub fn open(bytes: &'a [u8], magic: &[u8; 4], version: u32) -> Result<Self, Error> {
        if bytes.len() < 16 {
            return Err(Error::Truncated("shorter than the header and checksum"));
        }
        if &bytes[..4] != magic {
            return Err(Error::Corrupt("bad magic"));
        }
        let (payload, sum) = bytes.split_at(bytes.len() - 8);
        let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let stored = u64::from_le_bytes(sum.try_into().map_err(|_| Error::Truncated("checksum"))?);
        if xxh3_64(payload) != stored {
            return Err(Error::Corrupt("checksum mismatch (truncated or damaged)"));
        }
        if found != version {
            return Err(Error::Corrupt("unsupported version"));
        }
        Ok(Reader {
            body: &payload[8..],
            pos: 0,
        })
    }

    pub fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(Error::Truncated(what));
        }
        let s = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Reads `n` floats, after checking that they are there (so `n` cannot trigger a huge
    /// allocation), and that they are finite.
    pub fn f32s(&mut self, n: usize, what: &'static str) -> Result<Vec<f32>, Error> {
        let len = n.checked_mul(4).ok_or(Error::Corrupt(what))?;
        let b = self.take(len, what)?;
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite);
        }
        Ok(v)
    }
    pub fn finish(self) -> Result<(), Error> {
        if self.remaining() != 0 {
            return Err(Error::Corrupt("trailing bytes"));
        }
        Ok(())
    }
}
