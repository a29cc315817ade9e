//! The sessions of one process, in memory: what `mneme serve` uses on the embedded default.
//!
//! Each session is a slot: its expiry (an atomic) and a `removed` flag outside the lock, its
//! state inside. Counting, sweeping, lookups and deletes read only the atomics and never wait
//! for a session a request is working on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::store::{Found, LiveSession, SessionLease, SessionSlot, SessionStore, StoreResult};

#[derive(Debug, Default)]
pub struct MemorySessions {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    id: String,
    /// Milliseconds since the epoch at which the session expires.
    expires_ms: AtomicU64,
    /// Set when the session is deleted or swept: a request that was waiting for the lock
    /// then answers as for an unknown session.
    removed: AtomicBool,
    session: Mutex<LiveSession>,
}

impl Slot {
    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.load(Ordering::Acquire) <= now_ms
    }

    /// Expired, and no request is working on it: a request that outlives the session's
    /// lifetime (a long observe-sequence) keeps it, and its write then extends it, as KATO's
    /// heartbeat does. Never waits.
    fn to_drop(&self, now_ms: u64) -> bool {
        self.expired(now_ms) && self.session.try_lock().is_ok()
    }
}

impl MemorySessions {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Slot>>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the slot of `id` out of the map if it is still `slot`; whether it did.
    fn take(&self, id: &str, slot: &Slot) -> bool {
        let mut slots = self.write();
        if slots
            .get(id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), slot))
        {
            slots.remove(id);
            slot.removed.store(true, Ordering::Release);
            true
        } else {
            false
        }
    }
}

impl SessionStore for MemorySessions {
    fn insert(&self, session: LiveSession, expires_ms: u64) -> StoreResult<()> {
        let id = session.record.id.clone();
        let slot = Arc::new(Slot {
            id: id.clone(),
            expires_ms: AtomicU64::new(expires_ms),
            removed: AtomicBool::new(false),
            session: Mutex::new(session),
        });
        self.write().insert(id, slot);
        Ok(())
    }

    fn find(&self, id: &str, now_ms: u64) -> StoreResult<Found> {
        let Some(slot) = self.read().get(id).cloned() else {
            return Ok(Found::Missing);
        };
        if slot.to_drop(now_ms) {
            self.take(id, &slot);
            return Ok(Found::Expired);
        }
        Ok(Found::Live(slot))
    }

    fn remove(&self, slot: &dyn SessionSlot) -> StoreResult<bool> {
        let id = slot.id().to_owned();
        let mut slots = self.write();
        let Some(found) = slots.get(&id) else {
            return Ok(false);
        };
        // Only the very slot the caller found: a session created later under the same id
        // (impossible with random ids, cheap to rule out) stays.
        if !std::ptr::addr_eq(Arc::as_ptr(found), slot as *const dyn SessionSlot) {
            return Ok(false);
        }
        found.removed.store(true, Ordering::Release);
        slots.remove(&id);
        Ok(true)
    }

    fn active(&self, now_ms: u64) -> StoreResult<usize> {
        Ok(self.read().values().filter(|s| !s.expired(now_ms)).count())
    }

    fn held(&self) -> usize {
        self.read().len()
    }

    fn sweep(&self, now_ms: u64) -> StoreResult<usize> {
        let mut slots = self.write();
        let before = slots.len();
        slots.retain(|_, slot| {
            let keep = !slot.to_drop(now_ms);
            if !keep {
                slot.removed.store(true, Ordering::Release);
            }
            keep
        });
        Ok(before - slots.len())
    }
}

impl SessionSlot for Slot {
    fn id(&self) -> &str {
        &self.id
    }

    fn expires_ms(&self) -> u64 {
        self.expires_ms.load(Ordering::Acquire)
    }

    fn lock(&self) -> StoreResult<Box<dyn SessionLease + '_>> {
        // A panic while the session was held leaves no half-applied change that matters more
        // than losing the session would, so a poisoned lock is taken as it is.
        let guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(Lease { slot: self, guard }))
    }

    fn try_lock(&self) -> Option<Box<dyn SessionLease + '_>> {
        let guard = self.session.try_lock().ok()?;
        Some(Box::new(Lease { slot: self, guard }))
    }
}

struct Lease<'a> {
    slot: &'a Slot,
    guard: MutexGuard<'a, LiveSession>,
}

impl SessionLease for Lease<'_> {
    fn removed(&self) -> bool {
        self.slot.removed.load(Ordering::Acquire)
    }

    fn session(&mut self) -> &mut LiveSession {
        &mut self.guard
    }

    fn expires_ms(&self) -> u64 {
        self.slot.expires_ms()
    }

    fn save(&mut self, expires_ms: Option<u64>) -> StoreResult<()> {
        // The state is already in place: the lease held it exclusively.
        if let Some(expires_ms) = expires_ms {
            self.slot.expires_ms.store(expires_ms, Ordering::Release);
        }
        Ok(())
    }
}
