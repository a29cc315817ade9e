//! `mneme seq`'s commands on the named sessions of a node: run in the CLI's own process on the
//! embedded store, or, when a running `mneme serve` holds that store, by the server for the
//! CLI (`POST /mneme/seq`). Both go through the session service and print the same answer.

use std::sync::Arc;

use mneme_app::patterns::Patterns;
use mneme_app::sessions::{Answer, Freshness, NamedSessions, Options, Sessions};
use serde_json::{Value, json};

use super::json as kato_json;
use super::request;

/// One command, as the CLI sends it to a server.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// `observation` is KATO's observe body (`strings`, `vectors`, `emotives`, `metadata`).
    Observe {
        node: String,
        session: String,
        observation: Value,
    },
    Learn {
        node: String,
        session: String,
    },
    /// Event lists learned in bulk: the answer's `names` are `PTRN|<hash>`, or empty for a
    /// list with fewer than two symbols.
    LearnBatch {
        node: String,
        events: Vec<Vec<Vec<String>>>,
    },
    Predict {
        node: String,
        session: String,
    },
    Stm {
        node: String,
        session: String,
    },
    Clear {
        node: String,
        session: String,
        all: bool,
    },
    Pattern {
        node: String,
        name: String,
    },
}

/// The session service over the named sessions of `node`: the same observe, learn and
/// predictions as the server's routes.
fn sessions(patterns: &Arc<Patterns>, node: &str) -> Sessions {
    Sessions::new(
        patterns.clone(),
        Arc::new(NamedSessions::new(patterns.clone(), node)),
        Options::default(),
        Box::new(std::time::SystemTime::now),
    )
}

/// Runs `command` on `patterns`; the answer the CLI prints, or what went wrong.
pub fn run(patterns: &Arc<Patterns>, command: &Command) -> Result<Value, String> {
    let text = |err: &dyn std::fmt::Display| err.to_string();
    match command {
        Command::Observe {
            node,
            session,
            observation,
        } => {
            let (observation, _) = request::observation(Some(observation.clone()))
                .map_err(|errors| format!("invalid observation: {}", request::detail(&errors)))?;
            let observed = sessions(patterns, node)
                .observe(session, &observation)
                .map_err(|err| format!("observing: {err}"))?;
            let outcome = observed.outcome;
            Ok(json!({
                "status": "okay",
                "stm_length": outcome.stm_length.min(mneme_seq::session::MAX_STM_EVENTS),
                "time": outcome.time,
                "auto_learned_pattern": outcome.auto_learned.map(|h| format!("PTRN|{h}")),
            }))
        }
        Command::Learn { node, session } => {
            let learned = sessions(patterns, node)
                .learn(session)
                .map_err(|err| format!("learning: {err}"))?;
            Ok(json!({"status": "learned", "pattern_name": learned.name}))
        }
        Command::LearnBatch { node, events } => {
            let node = patterns.node(node).map_err(|e| text(&e))?;
            let names = node
                .learn_many(events, patterns.defaults().persistence)
                .map_err(|e| text(&e))?;
            let names: Vec<String> = names
                .into_iter()
                .map(|name| name.map_or(String::new(), |h| format!("PTRN|{h}")))
                .collect();
            Ok(json!({"names": names}))
        }
        Command::Predict { node, session } => {
            let render = |answer: Answer<'_>, _: &str| {
                let (predictions, future_potentials) = match answer {
                    Answer::Full(answer) => (
                        answer.to_predictions(),
                        answer.future_potentials().as_ref().clone(),
                    ),
                    Answer::Set(set) => (set.predictions.clone(), set.future_potentials.clone()),
                };
                let value = json!({
                    "predictions": predictions.iter().map(kato_json::prediction).collect::<Vec<_>>(),
                    "future_potentials": kato_json::future_potentials(&future_potentials),
                    "count": predictions.len(),
                });
                mneme_app::sessions::Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
            };
            let bytes = sessions(patterns, node)
                .predictions(session, Freshness::Computed, &render)
                .map_err(|e| text(&e))?;
            serde_json::from_slice(&bytes).map_err(|e| text(&e))
        }
        Command::Stm { node, session } => {
            let stm = sessions(patterns, node)
                .read(session, |view| view.record.state.stm.clone())
                .map_err(|e| text(&e))?;
            Ok(json!({"stm": stm, "length": stm.len()}))
        }
        Command::Clear { node, session, all } => {
            let sessions = sessions(patterns, node);
            if *all {
                sessions.clear_all(session).map_err(|e| text(&e))?;
            }
            sessions.delete(session).map_err(|e| text(&e))?;
            Ok(json!({"status": "cleared", "scope": if *all { "all" } else { "stm" }}))
        }
        Command::Pattern { node, name } => {
            let loaded = patterns.node(node).map_err(|e| text(&e))?;
            let hash = name.strip_prefix("PTRN|").unwrap_or(name);
            match loaded.pattern(hash) {
                Some(view) => Ok(kato_json::pattern(&view)),
                None => Err(format!("pattern {name} not found in node {node}")),
            }
        }
    }
}
