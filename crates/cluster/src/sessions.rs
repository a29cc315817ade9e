//! KATO sessions in Redis: the [`SessionStore`] of cluster mode.
//!
//! A session is one hash, `mneme:s:{id}`, with its version `v` (every save adds one), its
//! expiry `e` (milliseconds since the epoch) and its record `d` (postcard of
//! [`SessionRecord`]); the hash itself outlives `e` by a grace period so that a late request
//! hears "expired" rather than "unknown". The sorted set `mneme:sessions` (score: expiry)
//! counts and sweeps them.
//!
//! A request takes the session's lock, `mneme:lock:{id}` (a random token, with a lease), in
//! one script that also reads the record unless this process holds that very version already;
//! the save checks the token and bumps the version in another. Requests on one session from
//! any number of nodes therefore run one after the other, and a writer whose lease ran out
//! cannot overwrite a newer state (it gets a conflict and saves nothing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mneme_app::sessions::store::StoreResult;
use mneme_app::sessions::{
    Found, LiveSession, SessionLease, SessionRecord, SessionSlot, SessionStore, SharedLastCall,
    StoreError,
};
use mneme_seq::{FuturePotential, ObservePredictions, Prediction};
use redis::aio::ConnectionManager;

use crate::bridge::Bridge;

/// How long a lock holds without its holder (a node killed mid-request frees it then).
const LOCK_LEASE: Duration = Duration::from_secs(30);
/// How long a request waits for a session another request holds.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long an expired session's hash is kept, to answer "expired" instead of "not found".
const GRACE: Duration = Duration::from_secs(3600);
/// How long one Redis call may take before the store answers "unavailable".
const OP_TIMEOUT: Duration = Duration::from_secs(5);

const INDEX: &str = "mneme:sessions";

/// How many sessions a process keeps local copies of (node handle, predictions memo, the
/// record as last saved); a session without one is read from Redis in full.
const CACHE_LIMIT: usize = 4096;

fn data_key(id: &str) -> String {
    format!("mneme:s:{id}")
}

fn lock_key(id: &str) -> String {
    format!("mneme:lock:{id}")
}

/// Finds a session: -1 missing, -2 expired (and removed, unless a request holds it), else its
/// expiry.
const FIND: &str = r"
local e = redis.call('HGET', KEYS[1], 'e')
if not e then return -1 end
if tonumber(e) <= tonumber(ARGV[1]) then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return -2
  end
end
return tonumber(e)
";

/// Takes the lock: {0} busy, {-1} the session is gone (lock not taken), {1, v, e} when the
/// caller's cached version is current, {1, v, e, d} otherwise.
const LOCK: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {-1} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local e = redis.call('HGET', KEYS[1], 'e')
if v == ARGV[3] then return {1, tonumber(v), tonumber(e)} end
return {1, tonumber(v), tonumber(e), redis.call('HGET', KEYS[1], 'd')}
";

/// Saves under the lock and releases it (a save ends its request): the new version, 0 when
/// the lock is no longer this request's, -1 when the session was deleted meanwhile.
const SAVE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
return v
";

/// The shared last full-path call of a node: {0} none shared, {n} when the caller's stamp
/// `n` is current, else {n, d}.
const LAST_CALL: &str = r"
local n = redis.call('HGET', KEYS[1], 'n')
if not n then return {0} end
if n == ARGV[1] then return {tonumber(n)} end
return {tonumber(n), redis.call('HGET', KEYS[1], 'd')}
";

/// Shares a last full-path call: its stamp.
const SHARE_LAST_CALL: &str = r"
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return n
";

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Removes expired sessions that no request holds (at most 500 a call): how many.
const SWEEP: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
local n = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', 'mneme:lock:' .. id) == 0 then
    redis.call('DEL', 'mneme:s:' .. id)
    redis.call('ZREM', KEYS[1], id)
    n = n + 1
  end
end
return n
";

/// The rate limits' fixed windows (`SharedWindows::hit`): KEYS are the windows, ARGV[1] their
/// length in ms, ARGV[1 + i] the limit of window i. Counts in none of them when one is full;
/// answers `[counted, count_1, ms_left_1, count_2, ms_left_2, ...]`.
const WINDOWS: &str = r"
local out = {0}
local full = false
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  local left = redis.call('PTTL', key)
  if left < 0 then left = tonumber(ARGV[1]) end
  if count >= tonumber(ARGV[i + 1]) then full = true end
  out[2 * i] = count
  out[2 * i + 1] = left
end
if not full then
  out[1] = 1
  for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then
      redis.call('PEXPIRE', key, ARGV[1])
      out[2 * i + 1] = tonumber(ARGV[1])
    end
    out[2 * i] = count
  end
end
return out
";

struct Scripts {
    windows: redis::Script,
    find: redis::Script,
    lock: redis::Script,
    save: redis::Script,
    unlock: redis::Script,
    sweep: redis::Script,
    last_call: redis::Script,
    share_last_call: redis::Script,
}

pub(crate) struct Inner {
    bridge: Arc<Bridge>,
    conn: ConnectionManager,
    scripts: Scripts,
    /// Sessions this process worked on, with the version it last saw: a request whose
    /// session nobody else changed meanwhile reuses them (node handle, predictions memo).
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    version: u64,
    expires_ms: u64,
    live: LiveSession,
}

/// Sessions in Redis.
pub struct RedisSessions {
    inner: Arc<Inner>,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("Redis: {err}"))
}

impl Inner {
    /// Runs one Redis operation with the store's time limit.
    fn call<T>(
        &self,
        what: &str,
        op: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        match self.bridge.wait_for(OP_TIMEOUT, op) {
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) => Err(unavailable(format!("{what}: {err}"))),
            None => Err(unavailable(format!(
                "{what}: no answer within {} s",
                OP_TIMEOUT.as_secs()
            ))),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a session's local copy for the next request of this process. The copies are a
    /// cache (Redis holds the sessions): past [`CACHE_LIMIT`] the expired ones go, then all.
    fn keep(&self, id: String, cached: Cached) {
        let mut cache = self.cache();
        if cache.len() >= CACHE_LIMIT {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            cache.retain(|_, cached| cached.expires_ms > now_ms);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(id, cached);
    }
}

impl RedisSessions {
    pub(crate) fn connect(bridge: Arc<Bridge>, url: &str) -> Result<RedisSessions, String> {
        let shown = crate::pg::redact(url);
        let client = redis::Client::open(url)
            .map_err(|e| format!("MNEME_REDIS_URL {shown:?} is not a Redis URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = bridge
            .wait_for(
                Duration::from_secs(10),
                ConnectionManager::new_with_config(client, config),
            )
            .ok_or_else(|| format!("cannot connect to Redis at {shown}: no answer within 10 s"))?
            .map_err(|e| format!("cannot connect to Redis at {shown}: {e}"))?;
        tracing::info!("cluster mode: sessions in Redis at {shown}");
        Ok(RedisSessions {
            inner: Arc::new(Inner {
                bridge,
                conn,
                scripts: Scripts {
                    windows: redis::Script::new(WINDOWS),
                    find: redis::Script::new(FIND),
                    lock: redis::Script::new(LOCK),
                    save: redis::Script::new(SAVE),
                    unlock: redis::Script::new(UNLOCK),
                    sweep: redis::Script::new(SWEEP),
                    last_call: redis::Script::new(LAST_CALL),
                    share_last_call: redis::Script::new(SHARE_LAST_CALL),
                },
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Whether Redis answers (for `/health`).
    pub fn ping(&self) -> Result<(), String> {
        let mut conn = self.inner.conn.clone();
        self.inner
            .call("PING", async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A session as Redis holds it: the record, and the predictions of its last observe (which
/// `cognition-data` shows on whichever node serves it next). The service computes deferred
/// predictions before it saves.
#[derive(serde::Serialize)]
struct Stored<'a> {
    record: &'a SessionRecord,
    predictions: Option<&'a [Prediction]>,
}

#[derive(serde::Deserialize)]
struct Loaded {
    record: SessionRecord,
    predictions: Option<Vec<Prediction>>,
}

fn encode(record: &SessionRecord) -> StoreResult<Vec<u8>> {
    let predictions = match &record.state.predictions {
        ObservePredictions::Ready(predictions) => Some(predictions.as_slice()),
        ObservePredictions::None | ObservePredictions::Deferred(_) => None,
    };
    postcard::to_allocvec(&Stored {
        record,
        predictions,
    })
    .map_err(|e| StoreError::Unavailable(format!("encoding session {}: {e}", record.id)))
}

fn decode(id: &str, bytes: &[u8]) -> StoreResult<SessionRecord> {
    let Loaded {
        mut record,
        predictions,
    } = postcard::from_bytes(bytes).map_err(|e| {
        StoreError::Unavailable(format!(
            "session {id} in Redis cannot be read ({e}); was it written by another version of mneme?"
        ))
    })?;
    record.state.predictions =
        predictions.map_or(ObservePredictions::None, ObservePredictions::Ready);
    Ok(record)
}

fn last_call_key(kb_id: &str) -> String {
    format!("mneme:lc:{kb_id}")
}

impl SessionStore for RedisSessions {
    fn insert(&self, session: LiveSession, expires_ms: u64) -> StoreResult<()> {
        let id = session.record.id.clone();
        let data = encode(&session.record)?;
        let mut conn = self.inner.conn.clone();
        let key = data_key(&id);
        let member = id.clone();
        self.inner.call("create", async move {
            redis::pipe()
                .atomic()
                .hset_multiple(
                    &key,
                    &[
                        ("v", b"1".to_vec()),
                        ("e", expires_ms.to_string().into_bytes()),
                        ("d", data),
                    ],
                )
                .ignore()
                .pexpire_at(&key, (expires_ms + GRACE.as_millis() as u64) as i64)
                .ignore()
                .zadd(INDEX, &member, expires_ms)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })?;
        self.inner.keep(
            id,
            Cached {
                version: 1,
                expires_ms,
                live: session,
            },
        );
        Ok(())
    }

    fn find(&self, id: &str, now_ms: u64) -> StoreResult<Found> {
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.find.prepare_invoke();
        invocation
            .key(data_key(id))
            .key(lock_key(id))
            .key(INDEX)
            .arg(now_ms)
            .arg(id);
        let found: i64 =
            self.inner.call(
                "lookup",
                async move { invocation.invoke_async(&mut conn).await },
            )?;
        match found {
            -1 => {
                self.inner.cache().remove(id);
                Ok(Found::Missing)
            }
            -2 => {
                self.inner.cache().remove(id);
                Ok(Found::Expired)
            }
            expires_ms => Ok(Found::Live(Arc::new(Slot {
                inner: self.inner.clone(),
                id: id.to_owned(),
                expires_ms: expires_ms as u64,
            }))),
        }
    }

    fn remove(&self, slot: &dyn SessionSlot) -> StoreResult<bool> {
        let id = slot.id().to_owned();
        let mut conn = self.inner.conn.clone();
        let key = data_key(&id);
        let member = id.clone();
        let (deleted,): (i64,) = self.inner.call("delete", async move {
            redis::pipe()
                .atomic()
                .del(&key)
                .zrem(INDEX, &member)
                .ignore()
                .query_async(&mut conn)
                .await
        })?;
        self.inner.cache().remove(&id);
        Ok(deleted > 0)
    }

    fn active(&self, now_ms: u64) -> StoreResult<usize> {
        let mut conn = self.inner.conn.clone();
        let count: usize = self.inner.call("count", async move {
            redis::cmd("ZCOUNT")
                .arg(INDEX)
                .arg(format!("({now_ms}"))
                .arg("+inf")
                .query_async(&mut conn)
                .await
        })?;
        Ok(count)
    }

    fn held(&self) -> usize {
        let mut conn = self.inner.conn.clone();
        self.inner
            .call("count", async move {
                redis::cmd("ZCARD").arg(INDEX).query_async(&mut conn).await
            })
            .unwrap_or(0)
    }

    fn sweep(&self, now_ms: u64) -> StoreResult<usize> {
        self.inner
            .cache()
            .retain(|_, cached| cached.expires_ms > now_ms);
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.sweep.prepare_invoke();
        invocation.key(INDEX).arg(now_ms);
        self.inner.call(
            "sweep",
            async move { invocation.invoke_async(&mut conn).await },
        )
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn outage(&self) -> Option<String> {
        self.ping().err()
    }

    fn slot_for_request(&self, id: &str) -> Option<Arc<dyn SessionSlot>> {
        // The lock script tells a missing session and returns the expiry: no lookup first.
        Some(Arc::new(Slot {
            inner: self.inner.clone(),
            id: id.to_owned(),
            expires_ms: 0,
        }))
    }

    fn shared_last_call(&self, kb_id: &str, known: Option<u64>) -> StoreResult<SharedLastCall> {
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.last_call.prepare_invoke();
        invocation
            .key(last_call_key(kb_id))
            .arg(known.map_or_else(|| "-".to_owned(), |n| n.to_string()));
        let reply: Vec<redis::Value> = self.inner.call("last call", async move {
            invocation.invoke_async(&mut conn).await
        })?;
        match (reply.first(), reply.get(1)) {
            (Some(redis::Value::Int(0)) | None, _) => Ok(SharedLastCall::Empty),
            (Some(redis::Value::Int(_)), None) => Ok(SharedLastCall::Unchanged),
            (Some(redis::Value::Int(n)), Some(redis::Value::BulkString(bytes))) => {
                let potentials = postcard::from_bytes(bytes).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "the last call of node {kb_id} in Redis cannot be read ({e}); was it \
                         written by another version of mneme?"
                    ))
                })?;
                Ok(SharedLastCall::Changed(*n as u64, potentials))
            }
            (first, second) => Err(StoreError::Unavailable(format!(
                "Redis: unexpected answer to the last call of node {kb_id}: {first:?}, {second:?}"
            ))),
        }
    }

    fn share_last_call(
        &self,
        kb_id: &str,
        future_potentials: &[FuturePotential],
    ) -> StoreResult<Option<u64>> {
        let data = postcard::to_allocvec(future_potentials).map_err(|e| {
            StoreError::Unavailable(format!("encoding the last call of node {kb_id}: {e}"))
        })?;
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.share_last_call.prepare_invoke();
        invocation.key(last_call_key(kb_id)).arg(data);
        let stamp: i64 = self.inner.call("share last call", async move {
            invocation.invoke_async(&mut conn).await
        })?;
        Ok(Some(stamp as u64))
    }
}

struct Slot {
    inner: Arc<Inner>,
    id: String,
    expires_ms: u64,
}

impl SessionSlot for Slot {
    fn id(&self) -> &str {
        &self.id
    }

    fn expires_ms(&self) -> u64 {
        self.expires_ms
    }

    fn lock(&self) -> StoreResult<Box<dyn SessionLease + '_>> {
        let token = random_token();
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let cached = self.inner.cache().get(&self.id).map(|c| c.version);
            let mut conn = self.inner.conn.clone();
            let mut invocation = self.inner.scripts.lock.prepare_invoke();
            invocation
                .key(data_key(&self.id))
                .key(lock_key(&self.id))
                .arg(&token)
                .arg(LOCK_LEASE.as_millis() as u64)
                .arg(cached.map_or_else(String::new, |v| v.to_string()));
            let reply: Vec<redis::Value> =
                self.inner.call(
                    "lock",
                    async move { invocation.invoke_async(&mut conn).await },
                )?;
            let int = |i: usize| -> Option<i64> {
                match reply.get(i) {
                    Some(redis::Value::Int(n)) => Some(*n),
                    _ => None,
                }
            };
            match int(0) {
                Some(1) => {
                    let version = int(1).unwrap_or(0) as u64;
                    let expires_ms = int(2).unwrap_or(0) as u64;
                    let data = match reply.get(3) {
                        Some(redis::Value::BulkString(bytes)) => Some(bytes.as_slice()),
                        _ => None,
                    };
                    let mut lease = Lease {
                        inner: &self.inner,
                        id: &self.id,
                        token,
                        version,
                        expires_ms,
                        live: None,
                        removed: false,
                        saved: false,
                        unlocked: false,
                    };
                    let held = self.inner.cache().remove(&self.id);
                    lease.live = Some(match (data, held) {
                        (None, Some(held)) => held.live,
                        (Some(bytes), held) => {
                            let record = decode(&self.id, bytes)?;
                            match held {
                                // The same session changed elsewhere: the new record, with
                                // this process's node handle and memo (the memo checks the
                                // state it answers for).
                                Some(mut held) if held.live.record.node_id == record.node_id => {
                                    held.live.record = record;
                                    held.live
                                }
                                _ => LiveSession::new(record),
                            }
                        }
                        (None, None) => {
                            return Err(StoreError::Unavailable(format!(
                                "session {}: Redis sent no record",
                                self.id
                            )));
                        }
                    });
                    return Ok(Box::new(lease));
                }
                Some(-1) => {
                    self.inner.cache().remove(&self.id);
                    return Ok(Box::new(Lease {
                        inner: &self.inner,
                        id: &self.id,
                        token: String::new(),
                        version: 0,
                        expires_ms: 0,
                        live: Some(LiveSession::new(placeholder(&self.id))),
                        removed: true,
                        saved: false,
                        unlocked: true,
                    }));
                }
                _ => {
                    if started.elapsed() > LOCK_WAIT {
                        return Err(StoreError::Unavailable(format!(
                            "session {} stayed busy for {} s (another request holds it)",
                            self.id,
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
    }
}

/// A record that stands for a session deleted before its lock was taken (never saved).
fn placeholder(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        node_id: String::new(),
        created_at: std::time::SystemTime::UNIX_EPOCH,
        ttl: 0,
        metadata_json: String::new(),
        config: Default::default(),
        state: Default::default(),
    }
}

struct Lease<'a> {
    inner: &'a Arc<Inner>,
    id: &'a str,
    token: String,
    version: u64,
    expires_ms: u64,
    live: Option<LiveSession>,
    removed: bool,
    /// Whether this request saved the session: one that did not may have changed it in
    /// memory only (a write that failed half-way), so its copy is not trusted again.
    saved: bool,
    /// Whether the lock is released already (the save released it).
    unlocked: bool,
}

impl SessionLease for Lease<'_> {
    fn removed(&self) -> bool {
        self.removed
    }

    fn session(&mut self) -> &mut LiveSession {
        self.live.as_mut().expect("held until the lease ends")
    }

    fn expires_ms(&self) -> u64 {
        self.expires_ms
    }

    fn version(&self) -> Option<u64> {
        Some(self.version)
    }

    fn save(&mut self, expires_ms: Option<u64>) -> StoreResult<()> {
        if self.removed {
            return Ok(());
        }
        let expires_ms = expires_ms.unwrap_or(self.expires_ms);
        let data = encode(&self.session().record)?;
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.save.prepare_invoke();
        invocation
            .key(data_key(self.id))
            .key(lock_key(self.id))
            .key(INDEX)
            .arg(&self.token)
            .arg(data)
            .arg(expires_ms)
            .arg(GRACE.as_millis() as u64)
            .arg(self.id);
        let saved: i64 =
            self.inner.call(
                "save",
                async move { invocation.invoke_async(&mut conn).await },
            )?;
        match saved {
            0 => {
                // Not cached: the next request reads what the other writer saved.
                self.live = None;
                Err(StoreError::Conflict(self.id.to_owned()))
            }
            -1 => {
                self.removed = true;
                self.unlocked = true;
                Ok(())
            }
            version => {
                self.version = version as u64;
                self.expires_ms = expires_ms;
                self.saved = true;
                self.unlocked = true;
                Ok(())
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Some(live) = self.live.take() {
            self.inner.keep(
                self.id.to_owned(),
                Cached {
                    // Version 0 never matches: the next request reads the stored record
                    // (and keeps this copy's node handle and memo).
                    version: if self.saved { self.version } else { 0 },
                    expires_ms: self.expires_ms,
                    live,
                },
            );
        }
        if self.unlocked {
            return;
        }
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.unlock.prepare_invoke();
        invocation.key(lock_key(self.id)).arg(&self.token);
        // Released before the next request of this process can ask for it; when Redis
        // is gone the lease runs out by itself.
        let _ = self.inner.call("unlock", async move {
            invocation.invoke_async::<i64>(&mut conn).await
        });
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system has a random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl mneme_app::limits::SharedWindows for RedisSessions {
    fn hit(
        &self,
        windows: &[(String, u64)],
        window_ms: u64,
    ) -> Result<mneme_app::limits::Hit, String> {
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.scripts.windows.prepare_invoke();
        invocation.arg(window_ms);
        for (key, limit) in windows {
            invocation.key(key).arg(*limit);
        }
        let answer: Vec<i64> = self
            .inner
            .call("rate-limit windows", async move {
                invocation.invoke_async(&mut conn).await
            })
            .map_err(|err| err.to_string())?;
        if answer.len() != 1 + 2 * windows.len() {
            return Err(format!(
                "Redis: the rate-limit script answered {} numbers for {} windows",
                answer.len(),
                windows.len()
            ));
        }
        Ok(mneme_app::limits::Hit {
            counted: answer[0] == 1,
            windows: answer[1..]
                .chunks(2)
                .map(|pair| (pair[0].max(0) as u64, pair[1].max(0) as u64))
                .collect(),
        })
    }
}
