//! A session's short-term memory and what an observation does to it: build the event,
//! append it, compute observe-time predictions, auto-learn, accumulate emotives and metadata.

use crate::config::{Defaults, StmMode};
use crate::error::{Error, Result, VectorError};
use crate::name::vector_name;
use crate::node::Node;
use crate::predict::ObservePredictions;
use crate::types::{Emotives, MetaDict, Observation, average_emotives};

/// KATO's per-session resource limits (`enforce_limits`).
pub const MAX_STM_EVENTS: usize = 1000;
pub const MAX_ACCUMULATED: usize = 1000;

/// A vector with its `VCTR|` name.
pub type NamedVector = (String, Vec<f64>);

/// What the last observation looked like (`percept-data`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percept {
    /// The observation's strings, sorted.
    pub strings: Vec<String>,
    pub vectors: Vec<Vec<f64>>,
    /// Mean of the whole emotive accumulator.
    pub emotives: Emotives,
    pub metadata: MetaDict,
}

/// The settings an observation runs with (the session's, falling back to the server's).
#[derive(Clone, Debug, PartialEq)]
pub struct ObserveConfig {
    pub sort_symbols: bool,
    pub max_pattern_length: usize,
    pub stm_mode: StmMode,
    pub process_predictions: bool,
    pub persistence: usize,
    pub vector_neighbours: usize,
}

impl ObserveConfig {
    pub fn from_defaults(defaults: &Defaults) -> ObserveConfig {
        ObserveConfig {
            sort_symbols: defaults.sort_symbols,
            max_pattern_length: defaults.max_pattern_length,
            stm_mode: defaults.stm_mode,
            process_predictions: defaults.process_predictions,
            persistence: defaults.persistence,
            vector_neighbours: defaults.vector_neighbours,
        }
    }
}

/// What one observation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserveOutcome {
    /// Events in the STM, before [`Session::enforce_limits`].
    pub stm_length: usize,
    pub time: u64,
    /// Bare hash of the pattern auto-learn stored, if it stored one.
    pub auto_learned: Option<String>,
}

/// Short-term state of one session.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub stm: Vec<Vec<String>>,
    pub time: u64,
    pub emotives: Vec<Emotives>,
    pub metadata: Vec<MetaDict>,
    /// Vectors observed since the last learn: they join the node's index when it learns.
    pub pending_vectors: Vec<NamedVector>,
    pub percept: Option<Percept>,
    /// Predictions of the last observe (`cognition-data`), possibly not computed yet; not
    /// stored.
    #[serde(skip)]
    pub predictions: ObservePredictions,
    /// The request changing this state, in cluster mode: its learns are named after it, so
    /// that a request tried again after a failure counts them once. Not stored.
    #[serde(skip)]
    pub request_key: Option<String>,
    /// Learns made by this request so far (they are named in order).
    #[serde(skip)]
    learns_in_request: u32,
}

impl Session {
    /// The event an observation adds: vector symbols then strings, each part sorted when
    /// `sort_symbols` is on. Checks vector dimensions first (nothing changes on error).
    pub fn build_event(
        &self,
        node: &Node,
        observation: &Observation,
        config: &ObserveConfig,
    ) -> Result<(Vec<String>, Option<NamedVector>)> {
        let mut vector_symbols = Vec::new();
        let mut observed = None;
        if !observation.vectors.is_empty() {
            let dimension = observation.vectors[0].len();
            for vector in &observation.vectors {
                if vector.len() != dimension {
                    return Err(Error::Vector(VectorError {
                        expected: dimension,
                        actual: vector.len(),
                        vector_name: None,
                    }));
                }
            }
            let mut sum = vec![0.0; dimension];
            for vector in &observation.vectors {
                for (acc, x) in sum.iter_mut().zip(vector) {
                    *acc += x;
                }
            }
            let name = vector_name(&sum);
            node.check_vector(&sum)
                .map_err(|e| Error::Vector(e.named(&name)))?;
            if let Some((_, pending)) = self.pending_vectors.first() {
                if pending.len() != sum.len() {
                    return Err(Error::Vector(VectorError {
                        expected: pending.len(),
                        actual: sum.len(),
                        vector_name: Some(name),
                    }));
                }
            }
            vector_symbols.push(name.clone());
            for neighbour in node.nearest_vectors(&sum, config.vector_neighbours) {
                if !vector_symbols.contains(&neighbour) {
                    vector_symbols.push(neighbour);
                }
            }
            if config.sort_symbols {
                vector_symbols.sort();
            }
            observed = Some((name, sum));
        }
        let mut strings = observation.strings.clone();
        if config.sort_symbols {
            strings.sort();
        }
        vector_symbols.extend(strings);
        Ok((vector_symbols, observed))
    }

    /// KATO's observe. `predict` computes the observe-time predictions (server settings).
    pub fn observe(
        &mut self,
        node: &Node,
        observation: &Observation,
        config: &ObserveConfig,
        predict: &dyn Fn(&Node, &[Vec<String>]) -> ObservePredictions,
    ) -> Result<ObserveOutcome> {
        let (event, observed) = self.build_event(node, observation, config)?;
        let mut auto_learned = None;
        if !observation.strings.is_empty() || !observation.vectors.is_empty() {
            let before = (self.stm.len(), self.pending_vectors.len());
            if let Some(observed) = observed {
                if !self
                    .pending_vectors
                    .iter()
                    .any(|(name, _)| *name == observed.0)
                {
                    self.pending_vectors.push(observed);
                }
            }
            if !event.is_empty() {
                self.stm.push(event);
            }
            let previous = if config.process_predictions {
                Some(std::mem::replace(
                    &mut self.predictions,
                    predict(node, &self.stm),
                ))
            } else {
                None
            };
            auto_learned = match self.auto_learn(node, config) {
                Ok(learned) => learned,
                Err(err) => {
                    // A vector index of another dimension fails before auto-learn takes the
                    // STM: nothing of this observation stays. (A storage failure leaves the
                    // STM as auto-learn cut it: the pattern is learned in memory, not on disk.)
                    self.stm.truncate(before.0);
                    self.pending_vectors.truncate(before.1);
                    if let Some(previous) = previous {
                        self.predictions = previous;
                    }
                    return Err(err);
                }
            };
        }
        self.time += 1;
        if !observation.emotives.is_empty() {
            self.emotives.push(observation.emotives.clone());
        }
        if !observation.metadata.is_empty() {
            self.metadata.push(observation.metadata.clone());
        }
        let mut strings = observation.strings.clone();
        strings.sort();
        self.percept = Some(Percept {
            strings,
            vectors: observation.vectors.clone(),
            emotives: average_emotives(&self.emotives),
            metadata: observation.metadata.clone(),
        });
        Ok(ObserveOutcome {
            stm_length: self.stm.len(),
            time: self.time,
            auto_learned,
        })
    }

    /// Auto-learn after an event was appended (KATO 3.1.1): when the STM reaches
    /// `max_pattern_length` events it is learned (with no emotives or metadata, as KATO's
    /// observe path does) and emptied, or in ROLLING mode cut to its last
    /// `max_pattern_length - 1` events.
    fn auto_learn(&mut self, node: &Node, config: &ObserveConfig) -> Result<Option<String>> {
        let max = config.max_pattern_length;
        if max == 0 || self.stm.len() < max {
            return Ok(None);
        }
        let keep = if self.stm.len() == 1 || config.stm_mode == StmMode::Clear {
            Vec::new()
        } else {
            let window = max - 1;
            if window == 0 {
                self.stm.clone()
            } else if self.stm.len() > window {
                self.stm[self.stm.len() - window..].to_vec()
            } else {
                self.stm[1..].to_vec()
            }
        };
        self.predictions.settle(node);
        self.index_pending_vectors(node)?;
        let events = std::mem::replace(&mut self.stm, keep);
        let key = self.next_learn_key();
        node.learn_keyed(&events, &[], &[], config.persistence, key.as_deref())
    }

    /// The name of the request's next learn (`None` outside cluster mode).
    fn next_learn_key(&mut self) -> Option<String> {
        let base = self.request_key.as_ref()?;
        let key = format!("{base}/{}", self.learns_in_request);
        self.learns_in_request += 1;
        Some(key)
    }

    /// KATO's learn: the STM becomes a pattern (if it has at least two symbols) and is
    /// emptied in every case; the emotive and metadata accumulators are kept.
    pub fn learn(&mut self, node: &Node, persistence: usize) -> Result<Option<String>> {
        if self.stm.is_empty() {
            return Err(Error::EmptyStm);
        }
        self.predictions.settle(node);
        self.index_pending_vectors(node)?;
        let events = std::mem::take(&mut self.stm);
        let key = self.next_learn_key();
        node.learn_keyed(
            &events,
            &self.emotives,
            &self.metadata,
            persistence,
            key.as_deref(),
        )
    }

    /// The vectors observed since the last learn join the node's index; on an error (another
    /// session fixed another dimension meanwhile) they stay pending and the STM is untouched.
    fn index_pending_vectors(&mut self, node: &Node) -> Result<()> {
        node.index_vectors(&self.pending_vectors)?;
        self.pending_vectors.clear();
        Ok(())
    }

    /// Empties the STM, accumulators, time and last percept (`clear-stm`).
    pub fn clear(&mut self) {
        let request_key = self.request_key.take();
        let learns_in_request = self.learns_in_request;
        *self = Session {
            request_key,
            learns_in_request,
            ..Session::default()
        };
    }

    /// Starts a request named `key` on this state (cluster mode; see [`Session::request_key`]).
    pub fn begin_request(&mut self, key: Option<String>) {
        self.request_key = key;
        self.learns_in_request = 0;
    }

    /// KATO's limits, applied when it saves a session (after an observe, after a whole
    /// observe-sequence): the last [`MAX_STM_EVENTS`] events, the last [`MAX_ACCUMULATED`]
    /// emotives and metadata.
    pub fn enforce_limits(&mut self) {
        trim_front(&mut self.stm, MAX_STM_EVENTS);
        trim_front(&mut self.emotives, MAX_ACCUMULATED);
        trim_front(&mut self.metadata, MAX_ACCUMULATED);
    }
}

fn trim_front<T>(items: &mut Vec<T>, max: usize) {
    if items.len() > max {
        items.drain(..items.len() - max);
    }
}
