//! Predictions: which learned patterns the short-term memory is part of, and KATO's metrics
//! for each. A state of one symbol takes KATO's single-symbol path (patterns starting with it,
//! flat fields, no ensemble metrics); a longer state the full path (matching, event regions,
//! ensemble metrics, ranking).

mod answer;
mod blas;
mod draft;
mod ensemble;
mod full;
mod prediction;
mod single;

use std::sync::{Arc, Mutex};

use crate::config::PredictConfig;
use crate::node::{Node, NodeState};

pub use answer::{Events, FullAnswer, NameHex, PredictionRef, Symbols};
pub use draft::Names;
pub use prediction::{
    Anomaly, FullPrediction, FuturePotential, Metrics, Prediction, PredictionSet, SinglePrediction,
};

impl Node {
    /// KATO's predictions for the short-term memory `stm` of a session of this node.
    pub fn predict(&self, stm: &[Vec<String>], config: &PredictConfig) -> PredictionSet {
        let symbols: usize = stm.iter().map(Vec::len).sum();
        match symbols {
            0 => PredictionSet {
                predictions: Vec::new(),
                future_potentials: self.last_future_potentials(),
            },
            1 => {
                let symbol = stm.iter().flatten().next().map_or("", String::as_str);
                PredictionSet {
                    predictions: single::predict(self, symbol, config),
                    future_potentials: self.last_future_potentials(),
                }
            }
            _ => self.predict_full(stm, config, |answer| PredictionSet {
                predictions: answer.to_predictions(),
                future_potentials: answer.future_potentials().to_vec(),
            }),
        }
    }

    /// The full path of [`Node::predict`] (a state of two or more symbols, see
    /// [`takes_full_path`]), with its answer handed to `read` on the node while it stays locked
    /// for reading: nothing is copied out unless `read` copies it.
    pub fn predict_full<R>(
        &self,
        stm: &[Vec<String>],
        config: &PredictConfig,
        read: impl FnOnce(&FullAnswer<'_>) -> R,
    ) -> R {
        let st = self.read();
        let answer = full::answer_on(&st, stm, config);
        self.set_last_call(LastCall::Computed(answer.future_potentials().clone()));
        read(&answer)
    }

    /// Re-applies the one effect a full-path [`Node::predict`] has on the node (it becomes the
    /// node's last full-path call, whose future potentials later single-symbol calls report),
    /// for a caller that serves that call's remembered answer instead of computing it again.
    pub fn replay_full_predict(&self, future_potentials: Arc<Vec<FuturePotential>>) {
        self.set_last_call(LastCall::Computed(future_potentials));
    }

    /// Observe-time predictions (KATO computes them at every observe; only `cognition-data`
    /// shows them, and a later single-symbol prediction reports their future potentials).
    /// The full path is deferred until something reads it, or until the node is about to
    /// change, so an observe costs no scoring unless its predictions are ever looked at.
    pub fn defer_predict(&self, stm: &[Vec<String>], config: &PredictConfig) -> ObservePredictions {
        let symbols: usize = stm.iter().map(Vec::len).sum();
        if symbols < 2 {
            return ObservePredictions::Ready(self.predict(stm, config).predictions);
        }
        let deferred = Arc::new(Deferred {
            stm: stm.to_vec(),
            config: config.clone(),
            version: self.version(),
            result: Mutex::new(None),
        });
        self.set_last_call(LastCall::Pending(deferred.clone()));
        ObservePredictions::Deferred(deferred)
    }
}

/// Whether `stm` takes the full path, whose answer depends only on the node's patterns (its
/// [`Node::version`]), `stm` and the config: the other paths also report the node's last
/// future potentials, which any session may change.
pub fn takes_full_path(stm: &[Vec<String>]) -> bool {
    stm.iter().map(Vec::len).sum::<usize>() > 1
}

/// The predictions and future potentials of one full-path call.
type Computed = (Vec<Prediction>, Vec<FuturePotential>);

/// A full-path prediction whose computation waits for its first reader.
pub struct Deferred {
    stm: Vec<Vec<String>>,
    config: PredictConfig,
    /// The node's version when it was asked for.
    version: u64,
    result: Mutex<Option<Arc<Computed>>>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("stm", &self.stm)
            .field("version", &self.version)
            .finish()
    }
}

impl Deferred {
    /// Computes on `st` unless already computed. Lock order: node lock, then `result`.
    pub(crate) fn settle_on(&self, st: &NodeState) -> Arc<Computed> {
        let mut result = self.result.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = result.as_ref() {
            return done.clone();
        }
        let done = Arc::new(full::predict_on(st, &self.stm, &self.config));
        *result = Some(done.clone());
        done
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The node version this call belongs to.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    fn settle(&self, node: &Node) -> Arc<Computed> {
        if let Some(done) = self
            .result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return done.clone();
        }
        let st = node.read();
        self.settle_on(&st)
    }
}

/// The node's record of its last full-path prediction, for single-symbol calls.
#[derive(Debug)]
pub enum LastCall {
    Computed(Arc<Vec<FuturePotential>>),
    Pending(Arc<Deferred>),
}

impl Default for LastCall {
    fn default() -> LastCall {
        LastCall::Computed(Arc::default())
    }
}

/// A session's observe-time predictions.
#[derive(Clone, Debug, Default)]
pub enum ObservePredictions {
    #[default]
    None,
    Ready(Vec<Prediction>),
    Deferred(Arc<Deferred>),
}

impl ObservePredictions {
    /// The predictions, computing them now if they were deferred.
    pub fn get(&self, node: &Node) -> Vec<Prediction> {
        match self {
            ObservePredictions::None => Vec::new(),
            ObservePredictions::Ready(predictions) => predictions.clone(),
            ObservePredictions::Deferred(deferred) => deferred.settle(node).0.clone(),
        }
    }

    /// The predictions as a store outside this process keeps them (computed now if they were
    /// deferred: the node may change before anything reads them); `None` for none asked.
    pub fn resolved(&self, node: &Node) -> Option<Vec<Prediction>> {
        match self {
            ObservePredictions::None => None,
            ObservePredictions::Ready(predictions) => Some(predictions.clone()),
            ObservePredictions::Deferred(deferred) => Some(deferred.settle(node).0.clone()),
        }
    }

    /// Computes deferred predictions now (before the session changes the node).
    pub fn settle(&self, node: &Node) {
        if let ObservePredictions::Deferred(deferred) = self {
            deferred.settle(node);
        }
    }
}
