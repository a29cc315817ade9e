//! Plain data the engine takes and returns: emotive maps, metadata dicts, observations.

use crate::pyfmt::MetaValue;

/// A symbol in results: shared with the node's symbol table, so building a prediction does
/// not copy strings.
pub type Symbol = std::sync::Arc<str>;

/// Emotive values in the order their keys first appeared (Python dicts keep insertion order).
pub type Emotives = Vec<(String, f64)>;

/// One observation's metadata: key order as sent.
pub type MetaDict = Vec<(String, MetaValue)>;

/// Accumulated metadata of a pattern: for each key the sorted distinct `str()` of its values.
pub type PatternMetadata = Vec<(String, Vec<String>)>;

/// One observation sent to a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub strings: Vec<String>,
    pub vectors: Vec<Vec<f64>>,
    pub emotives: Emotives,
    pub metadata: MetaDict,
}

/// KATO's emotive average: for each key (in first-appearance order) the arithmetic mean over
/// the entries that have it, summed left to right.
pub fn average_emotives(entries: &[Emotives]) -> Emotives {
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for entry in entries {
        for (key, value) in entry {
            match sums.iter_mut().find(|(k, _, _)| k == key) {
                Some((_, sum, count)) => {
                    *sum += value;
                    *count += 1;
                }
                None => sums.push((key.clone(), *value, 1)),
            }
        }
    }
    sums.into_iter()
        .map(|(key, sum, count)| (key, sum / count as f64))
        .collect()
}

/// KATO's `accumulate_metadata`: every key with the sorted distinct `str()` of its values.
pub fn accumulate_metadata(entries: &[MetaDict]) -> PatternMetadata {
    let mut out: PatternMetadata = Vec::new();
    for entry in entries {
        for (key, value) in entry {
            let text = crate::pyfmt::python_str(value);
            match out.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values.push(text),
                None => out.push((key.clone(), vec![text])),
            }
        }
    }
    for (_, values) in &mut out {
        values.sort();
        values.dedup();
    }
    out
}

/// Per-key union of two accumulated metadata maps, each list re-sorted.
pub fn merge_metadata(existing: &PatternMetadata, new: &PatternMetadata) -> PatternMetadata {
    let mut out = existing.clone();
    for (key, values) in new {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some((_, current)) => {
                current.extend(values.iter().cloned());
                current.sort();
                current.dedup();
            }
            None => out.push((key.clone(), values.clone())),
        }
    }
    out
}
