//! The pattern engine of mneme: KATO's observe / learn / predict semantics as a deterministic
//! library (see `../shared/specs/kato.md`).
//!
//! A [`Node`] is one KATO processor's long-term memory (learned patterns, symbol statistics,
//! affinities, vectors), kept through a [`Journal`] or in memory only; a [`Session`] is one
//! client's short-term memory, which observes into a node and learns from it. Predictions are
//! computed on the node on dense symbol ids, and names are resolved only as they are read.
//!
//! This crate reads no clock, no randomness and no environment, and knows nothing of HTTP or
//! JSON: the server gives KATO's answers their shape.
//!
//! ```
//! use mneme_seq::{Defaults, Node, Observation, ObserveConfig, ObservePredictions, Session};
//!
//! let node = Node::in_memory("example");
//! let defaults = Defaults::kato();
//! let config = ObserveConfig::from_defaults(&defaults);
//! let mut session = Session::default();
//! for symbol in ["hello", "world"] {
//!     let observation = Observation { strings: vec![symbol.to_owned()], ..Observation::default() };
//!     session.observe(&node, &observation, &config, &|_, _| ObservePredictions::None)?;
//! }
//! let name = session.learn(&node, defaults.persistence)?.expect("two symbols make a pattern");
//! let stm = [vec!["hello".to_owned()], vec!["world".to_owned()]];
//! let set = node.predict(&stm, &defaults.predict_config());
//! assert_eq!(set.predictions[0].name(), name);
//! # Ok::<(), mneme_seq::Error>(())
//! ```

// The modules stay public while dependents move to the names re-exported below.
pub mod config;
pub mod error;
pub mod matching;
pub mod name;
pub mod node;
pub mod predict;
pub mod pyfmt;
pub mod redis_float;
pub mod session;
pub mod session_config;
pub mod types;

pub use config::{Defaults, PredictConfig, RankKey, StmMode, kb_id};
pub use error::{Error, ErrorKind, Result, VectorError};
pub use name::{pattern_hash, vector_name};
pub use node::{Journal, Node, NodeStats, PatternView, SymbolStat};
pub use predict::{
    Anomaly, Events, FullAnswer, FullPrediction, FuturePotential, Metrics, NameHex,
    ObservePredictions, Prediction, PredictionRef, PredictionSet, SinglePrediction, Symbols,
    takes_full_path,
};
pub use pyfmt::MetaValue;
pub use session::{
    MAX_ACCUMULATED, MAX_STM_EVENTS, ObserveConfig, ObserveOutcome, Percept, Session,
};
pub use session_config::SessionConfig;
pub use types::{Emotives, MetaDict, Observation, PatternMetadata, Symbol};
