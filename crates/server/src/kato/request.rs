//! KATO's request bodies and query parameters as types, each field read by its pydantic rule
//! (`crate::lax::kato`), every problem answered in FastAPI's 422 list (`type`, `loc`, `msg`,
//! `input`), and the OpenAPI schemas generated from the same declarations.

use mneme_app::sessions::MAX_TTL_SECONDS;
use mneme_seq::types::Observation;
use serde_json::{Value, json};

use super::json::to_meta;
use crate::lax::kato::{
    Dict, Flag, Float, Int, List, Numbers, Objects, OptDict, OptStr, Required, Str,
};
use crate::lax::{self, Problems};

lax::request! {
    /// KATO's `ObservationData`: one event (every field optional).
    pub struct ObservationData {
        /// Symbols of the event (sorted into the STM when `sort_symbols` is on).
        pub strings: Lax<List<Str>>,
        /// Vectors, summed into one and named `VCTR|<sha1>`.
        pub vectors: Lax<List<List<Float>>>,
        /// Emotive values, averaged into a learned pattern.
        pub emotives: Lax<Numbers>,
        /// Accumulated into a learned pattern's metadata.
        pub metadata: Lax<Dict>,
        /// In a sequence: echoed in the item's result.
        pub unique_id: Lax<OptStr>,
    }
}

impl ObservationData {
    /// The engine's observation and the `unique_id` (read, so no problems are left).
    pub fn into_observation(self) -> (Observation, Option<String>) {
        let observation = Observation {
            strings: self.strings.into_inner().unwrap_or_default(),
            vectors: self.vectors.into_inner().unwrap_or_default(),
            emotives: self.emotives.into_inner().unwrap_or_default(),
            metadata: self
                .metadata
                .into_inner()
                .map(|map| map.iter().map(|(k, v)| (k.clone(), to_meta(v))).collect())
                .unwrap_or_default(),
        };
        (observation, self.unique_id.into_inner())
    }
}

lax::request! {
    /// `POST /sessions`: KATO's `CreateSessionRequest`.
    pub struct CreateSession {
        /// The node whose long-term memory the session uses.
        pub node_id: Lax<Required<Str>>,
        pub metadata: Lax<Dict>,
        /// Seconds; 0 or absent means the server's `SESSION_TTL`.
        pub ttl_seconds: Lax<Int<0, MAX_TTL_SECONDS>>,
        /// Session configuration (applied all or nothing, silently).
        pub config: Lax<OptDict>,
    }
}

lax::request! {
    /// `POST /sessions/{session_id}/observe-sequence`: KATO's `ObserveSequenceRequest`.
    pub struct ObserveSequence {
        pub observations: Lax<Required<Objects<ObservationData>>>,
        /// Learn after every observation.
        pub learn_after_each: Lax<Flag> = false,
        /// Learn once after the last observation.
        pub learn_at_end: Lax<Flag> = false,
        /// Clear the STM before each observation (every item starts alone).
        pub clear_stm_between: Lax<Flag> = false,
    }
}

lax::request! {
    /// `POST /sessions/{session_id}/extend`.
    pub struct ExtendQuery {
        /// The new lifetime from now, in seconds.
        pub ttl_seconds: Lax<Int<1, MAX_TTL_SECONDS>> = 3600,
    }
}

lax::request! {
    /// `POST /sessions/{session_id}/config`: `{"config": {...}}`, or the bare object.
    pub struct ConfigUpdate {
        /// The settings to change (`recall_threshold`, `max_predictions`, `stm_mode`, ...).
        pub config: Lax<OptDict>,
    }
}

lax::request! {
    /// The node of KATO's node-level reads (else the `x-test-id` / `x-node-id` headers, else
    /// `default_node`).
    pub struct NodeQuery {
        pub node_id: Lax<OptStr>,
    }
}

/// The `detail` of a 422 answer (`{"detail": [...]}`), as the CLI prints it.
pub fn detail(problems: &Problems) -> Value {
    json!({ "detail": problems.kato_list() })
}

/// An observe body (KATO's `ObservationData`), read as the route reads it.
pub fn observation(body: Option<Value>) -> Result<(Observation, Option<String>), Problems> {
    lax::body::<ObservationData>(body).map(ObservationData::into_observation)
}
