//! The bounds of an import, and the reader that enforces them on the bytes actually read.

use std::io::{self, Read};

/// How much an import may read; every field is a setting (`KB_IMPORT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The archive itself, as uploaded (`KB_IMPORT_MAX_UPLOAD_BYTES`).
    pub max_archive_bytes: u64,
    /// Every entry read, decompressed, together; for a JSON archive, the document
    /// (`KB_IMPORT_MAX_BYTES`).
    pub max_bytes: u64,
    /// One ZIP entry, decompressed (`KB_IMPORT_MAX_ENTRY_BYTES`).
    pub max_entry_bytes: u64,
    /// Entries in a ZIP archive (`KB_IMPORT_MAX_ENTRIES`).
    pub max_entries: u64,
    /// Documents in an archive (`KB_IMPORT_MAX_DOCUMENTS`): each costs a few hundred bytes
    /// parsed and indexed however short its JSON, so the byte bounds alone do not bound them.
    pub max_documents: u64,
}

/// Which bound an import ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    ArchiveBytes,
    TotalBytes,
    EntryBytes,
    Entries,
    Documents,
}

impl Limit {
    /// The environment variable that sets it.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::ArchiveBytes => "KB_IMPORT_MAX_UPLOAD_BYTES",
            Limit::TotalBytes => "KB_IMPORT_MAX_BYTES",
            Limit::EntryBytes => "KB_IMPORT_MAX_ENTRY_BYTES",
            Limit::Entries => "KB_IMPORT_MAX_ENTRIES",
            Limit::Documents => "KB_IMPORT_MAX_DOCUMENTS",
        }
    }

    /// Its key in the configuration file.
    pub fn config_key(self) -> &'static str {
        match self {
            Limit::ArchiveBytes => "server.import_max_upload_bytes",
            Limit::TotalBytes => "server.import_max_bytes",
            Limit::EntryBytes => "server.import_max_entry_bytes",
            Limit::Entries => "server.import_max_entries",
            Limit::Documents => "server.import_max_documents",
        }
    }

    pub fn of(self, limits: &ArchiveLimits) -> u64 {
        match self {
            Limit::ArchiveBytes => limits.max_archive_bytes,
            Limit::TotalBytes => limits.max_bytes,
            Limit::EntryBytes => limits.max_entry_bytes,
            Limit::Entries => limits.max_entries,
            Limit::Documents => limits.max_documents,
        }
    }

    pub(super) fn unit(self) -> &'static str {
        match self {
            Limit::Entries => "entries",
            Limit::Documents => "documents",
            Limit::ArchiveBytes | Limit::TotalBytes | Limit::EntryBytes => "bytes",
        }
    }
}

/// Reads `inner` until the entry's or the archive's allowance is spent, then fails, so that
/// a small archive can never make the server read (or hold) more than the limits.
///
/// Counts what `inner` actually produced, never what a header says it will; keeps the CRC-32
/// of what went through for the caller to check against the ZIP header.
pub(super) struct Bounded<'a, R> {
    inner: R,
    /// What is left of the entry's own limit (`None`: only the archive's applies).
    entry_left: Option<u64>,
    /// What is left of the archive's limit, shared by its entries.
    total_left: &'a mut u64,
    crc: crc32fast::Hasher,
    exceeded: Option<Limit>,
}

impl<'a, R: Read> Bounded<'a, R> {
    pub(super) fn new(inner: R, entry_limit: Option<u64>, total_left: &'a mut u64) -> Self {
        Bounded {
            inner,
            entry_left: entry_limit,
            total_left,
            crc: crc32fast::Hasher::new(),
            exceeded: None,
        }
    }

    /// The limit the reader ran into, if it did.
    pub(super) fn exceeded(&self) -> Option<Limit> {
        self.exceeded
    }

    /// The CRC-32 of every byte read so far.
    pub(super) fn crc32(&self) -> u32 {
        self.crc.clone().finalize()
    }
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(limit) = self.exceeded {
            return Err(limit_reached(limit));
        }
        let (allowed, limit) = match self.entry_left {
            Some(entry) if entry <= *self.total_left => (entry, Limit::EntryBytes),
            _ => (*self.total_left, Limit::TotalBytes),
        };
        // One byte past the allowance tells an entry that ends at the limit from one that
        // goes on; at most that byte is ever read beyond it.
        let wanted = buf
            .len()
            .min(usize::try_from(allowed.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..wanted])?;
        if n as u64 > allowed {
            self.exceeded = Some(limit);
            return Err(limit_reached(limit));
        }
        self.crc.update(&buf[..n]);
        *self.total_left -= n as u64;
        if let Some(entry) = &mut self.entry_left {
            *entry -= n as u64;
        }
        Ok(n)
    }
}

fn limit_reached(limit: Limit) -> io::Error {
    io::Error::other(format!("the limit {} was reached", limit.setting()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], entry: Option<u64>, total: u64) -> (Result<usize, String>, u64) {
        let mut total_left = total;
        let mut bounded = Bounded::new(data, entry, &mut total_left);
        let mut out = Vec::new();
        let result = bounded
            .read_to_end(&mut out)
            .map_err(|_| format!("{:?}", bounded.exceeded()));
        (result, total_left)
    }

    #[test]
    fn stops_one_byte_past_the_smaller_allowance() {
        let data = vec![7u8; 100];
        assert_eq!(read_all(&data, Some(100), 1000), (Ok(100), 900));
        assert_eq!(read_all(&data, None, 100), (Ok(100), 0));
        assert_eq!(
            read_all(&data, Some(99), 1000).0,
            Err("Some(EntryBytes)".into())
        );
        assert_eq!(
            read_all(&data, Some(500), 99).0,
            Err("Some(TotalBytes)".into())
        );
        assert_eq!(read_all(&data, None, 0).0, Err("Some(TotalBytes)".into()));
    }

    #[test]
    fn entries_share_the_archive_allowance() {
        let data = [1u8; 60];
        let mut total_left = 100;
        let mut out = Vec::new();
        Bounded::new(&data[..], Some(80), &mut total_left)
            .read_to_end(&mut out)
            .unwrap();
        let mut second = Bounded::new(&data[..], Some(80), &mut total_left);
        assert!(second.read_to_end(&mut out).is_err());
        assert_eq!(second.exceeded(), Some(Limit::TotalBytes));
    }
}
