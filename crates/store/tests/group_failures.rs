//! A commit that fails or panics inside the backend fails its waiters, never hangs the next
//! writer, and leaves the group reporting why it takes no more writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use mneme_store::{
    CommitMode, Durability, Error, GroupCommit, KvStore, MemorySnapshot, MemoryStore, Result,
    WriteBatch,
};

/// What the next commit of a [`Flaky`] store does.
const WORKS: u8 = 0;
const PANICS: u8 = 1;
const FAILS: u8 = 2;

#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    next: AtomicU8,
}

impl KvStore for Flaky {
    type Snapshot = MemorySnapshot;

    fn snapshot(&self) -> Result<MemorySnapshot> {
        self.inner.snapshot()
    }

    fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        match self.next.load(Ordering::SeqCst) {
            PANICS => panic!("page checksum mismatch (simulated)"),
            FAILS => Err(Error::Io("No space left on device (simulated)".into())),
            _ => self.inner.write_with(batch, durability),
        }
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

fn batch(key: &str) -> WriteBatch {
    let mut batch = WriteBatch::default();
    batch.put(key.as_bytes().to_vec(), b"v".to_vec());
    batch
}

/// Runs `write` on another thread and returns its result, failing the test (instead of
/// hanging it) if no answer comes within a minute.
fn answered<T: Send + 'static>(write: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(write());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the write never returned: the group commit hangs")
}

fn broken_group(how: u8) -> Arc<GroupCommit<Flaky>> {
    let group = Arc::new(GroupCommit::new(Flaky::default(), CommitMode::Durable));
    group.write(batch("before")).unwrap();
    group.store().next.store(how, Ordering::SeqCst);
    group
}

#[test]
fn a_panicking_commit_fails_its_writer_and_every_later_one_without_hanging() {
    let group = broken_group(PANICS);
    let first = answered({
        let group = group.clone();
        move || group.write(batch("first"))
    });
    let err = first.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(
        group.failure().unwrap().contains("page checksum mismatch"),
        "the reason is kept for /health"
    );

    // The backend would work again, but the group does not trust a store whose commit died
    // half-way: later writers get an answer at once, naming the first failure.
    group.store().next.store(WORKS, Ordering::SeqCst);
    for key in ["second", "third"] {
        let err = answered({
            let group = group.clone();
            move || group.write(batch(key))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Failed(_)), "{err:?}");
        assert!(err.to_string().contains("restart"), "{err}");
    }
    let flushed = answered({
        let group = group.clone();
        move || group.flush()
    });
    assert!(flushed.is_err());
    use mneme_store::KvSnapshot;
    let snapshot = group.store().snapshot().unwrap();
    assert!(snapshot.get(b"before").unwrap().is_some());
    assert!(snapshot.get(b"second").unwrap().is_none());
}

#[test]
fn a_failing_commit_fails_its_writers_and_marks_the_group_failed() {
    let group = broken_group(FAILS);
    let err = answered({
        let group = group.clone();
        move || group.write(batch("first"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(group.failure().unwrap().contains("No space left"));
    let err = answered({
        let group = group.clone();
        move || group.write(batch("second"))
    })
    .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
}

#[test]
fn concurrent_writers_behind_a_panicking_leader_all_get_an_answer() {
    let group = broken_group(PANICS);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let group = group.clone();
            std::thread::spawn(move || group.write(batch(&format!("w{i}"))))
        })
        .collect();
    let results = answered(move || {
        writers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(results.iter().all(|r| r.is_err()), "{results:?}");
}

#[test]
fn a_healthy_group_reports_no_failure() {
    let group = GroupCommit::new(MemoryStore::default(), CommitMode::Durable);
    group.write(batch("k")).unwrap();
    assert!(group.failure().is_none());
}
