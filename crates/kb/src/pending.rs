//! Vectors an ingest computed but has not committed yet, kept so that an interrupted ingest
//! (Ctrl-C or a crash during embedding, a model error) loses none of its embedding work: after
//! each group of texts, their vectors are appended to `pending-vectors.bin` and synced; the
//! next ingest takes every text whose hash is there from the file instead of the model, and
//! the commit that stores them removes the file.
//!
//! Format: a header (magic, format, vector length, the model's fingerprint), then records of
//! (xxh3 of the chunk text, the vector as little-endian f32, xxh3 of both). Reading stops at
//! the first record that is cut short or fails its checksum (a write torn by a crash), so a
//! damaged tail costs only the vectors in it. A file of another model or length is ignored,
//! and replaced by the next ingest that embeds.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files;

const MAGIC: &[u8; 8] = b"MNEMEPND";
const FORMAT: u32 = 1;
const FILE: &str = "pending-vectors.bin";

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

pub(crate) fn header(fingerprint: &str, dim: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(20 + fingerprint.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes.extend_from_slice(&(fingerprint.len() as u32).to_le_bytes());
    bytes.extend_from_slice(fingerprint.as_bytes());
    bytes
}

/// The vectors of `pending-vectors.bin` by text hash, when it was written for this model
/// (`fingerprint`, `dim`); empty when there is none, or it is another model's.
pub(crate) fn load(dir: &Path, fingerprint: &str, dim: usize) -> Result<HashMap<u64, Vec<f32>>> {
    let path = path(dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(err) => return Err(Error::io(format!("reading {}", path.display()), err)),
    };
    Ok(parse(&bytes, fingerprint, dim).0)
}

/// The vectors, and how many whole valid records precede the first bad one.
fn parse(bytes: &[u8], fingerprint: &str, dim: usize) -> (HashMap<u64, Vec<f32>>, usize) {
    let head = header(fingerprint, dim);
    let mut out = HashMap::new();
    let mut valid = 0;
    if !bytes.starts_with(&head) {
        return (out, 0);
    }
    let record = 16 + 4 * dim;
    for rec in bytes[head.len()..].chunks(record) {
        if rec.len() < record {
            break;
        }
        let (body, sum) = rec.split_at(record - 8);
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            break;
        }
        let hash = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let vector = body[8..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        out.insert(hash, vector);
        valid += 1;
    }
    (out, valid)
}

/// Appends vectors to `pending-vectors.bin`.
pub(crate) struct PendingWriter {
    file: fs::File,
    path: PathBuf,
    dim: usize,
}

impl PendingWriter {
    /// Opens the file to append to it, starting it afresh when it is missing or belongs to
    /// another model.
    pub(crate) fn open(dir: &Path, fingerprint: &str, dim: usize) -> Result<PendingWriter> {
        let path = path(dir);
        let io = |err: std::io::Error| Error::io(format!("writing {}", path.display()), err);
        let head = header(fingerprint, dim);
        let compatible = fs::File::open(&path)
            .ok()
            .and_then(|f| {
                use std::io::Read;
                let mut start = vec![0u8; head.len()];
                f.take(head.len() as u64).read_exact(&mut start).ok()?;
                Some(start == head)
            })
            .unwrap_or(false);
        let file = if compatible {
            // A torn last record would hide the ones after it: cut the file back to whole,
            // valid records first.
            let bytes = fs::read(&path).map_err(io)?;
            let valid = parse(&bytes, fingerprint, dim).1;
            let file = fs::OpenOptions::new().write(true).open(&path).map_err(io)?;
            let record = 16 + 4 * dim as u64;
            let keep = head.len() as u64 + valid as u64 * record;
            if file.metadata().map_err(io)?.len() != keep {
                file.set_len(keep).map_err(io)?;
            }
            let mut file = file;
            use std::io::Seek;
            file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
            file
        } else {
            let mut file = fs::File::create(&path).map_err(io)?;
            file.write_all(&head).map_err(io)?;
            file.sync_all().map_err(io)?;
            files::sync_dir(dir)?;
            file
        };
        Ok(PendingWriter { file, path, dim })
    }

    /// Appends one vector per text hash and syncs the file.
    pub(crate) fn append(&mut self, hashes: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        let mut bytes = Vec::with_capacity(hashes.len() * (16 + 4 * self.dim));
        for (hash, vector) in hashes.iter().zip(vectors) {
            if vector.len() != self.dim {
                continue;
            }
            let start = bytes.len();
            bytes.extend_from_slice(&hash.to_le_bytes());
            for x in vector {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            let sum = xxhash_rust::xxh3::xxh3_64(&bytes[start..]);
            bytes.extend_from_slice(&sum.to_le_bytes());
        }
        let io = |err: std::io::Error| Error::io(format!("writing {}", self.path.display()), err);
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Removes the file (after a commit that holds its vectors).
pub(crate) fn remove(dir: &Path) {
    let _ = fs::remove_file(path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_and_a_torn_tail_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(load(d, "m", 3).unwrap().is_empty());
        let mut w = PendingWriter::open(d, "m", 3).unwrap();
        w.append(&[1, 2], &[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]])
            .unwrap();
        drop(w);
        let mut w = PendingWriter::open(d, "m", 3).unwrap();
        w.append(&[3], &[vec![7.0, 8.0, 9.0]]).unwrap();
        drop(w);
        let got = load(d, "m", 3).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[&3], vec![7.0, 8.0, 9.0]);
        // Another model's or length's file is not used.
        assert!(load(d, "other", 3).unwrap().is_empty());
        assert!(load(d, "m", 4).unwrap().is_empty());
        // A torn last record: the others remain, and appending goes on after them.
        let len = fs::metadata(path(d)).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(path(d)).unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);
        assert_eq!(load(d, "m", 3).unwrap().len(), 2);
        let mut w = PendingWriter::open(d, "m", 3).unwrap();
        w.append(&[4], &[vec![0.5, 0.5, 0.5]]).unwrap();
        drop(w);
        let got = load(d, "m", 3).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[&4], vec![0.5, 0.5, 0.5]);
        // A flipped byte ends the valid records there.
        let mut bytes = fs::read(path(d)).unwrap();
        let head = header("m", 3).len();
        bytes[head + 10] ^= 0xff;
        fs::write(path(d), &bytes).unwrap();
        assert!(load(d, "m", 3).unwrap().is_empty());
        // Another model's writer starts the file afresh.
        let mut w = PendingWriter::open(d, "other", 3).unwrap();
        w.append(&[9], &[vec![1.0, 1.0, 1.0]]).unwrap();
        assert_eq!(load(d, "other", 3).unwrap().len(), 1);
        remove(d);
        assert!(!path(d).exists());
    }
}
