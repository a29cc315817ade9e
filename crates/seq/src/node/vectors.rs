//! The vectors a node has learned, searched exhaustively by Euclidean distance (exact and
//! deterministic: ties go to the earlier-learned vector).

use crate::error::VectorError;

#[derive(Clone, Debug, Default)]
pub(crate) struct VectorIndex {
    dimension: Option<usize>,
    names: Vec<String>,
    data: Vec<f64>,
}

impl VectorIndex {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn check(&self, vector: &[f64]) -> Result<(), VectorError> {
        match self.dimension {
            Some(expected) if expected != vector.len() => Err(VectorError {
                expected,
                actual: vector.len(),
                vector_name: None,
            }),
            _ => Ok(()),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Adds a named vector unless the name is known; returns whether it was added. The
    /// first vector fixes the dimension; callers check it first.
    pub fn insert(&mut self, name: &str, vector: &[f64]) -> bool {
        if self.names.iter().any(|n| n == name) {
            return false;
        }
        self.dimension.get_or_insert(vector.len());
        self.names.push(name.to_owned());
        self.data.extend_from_slice(vector);
        true
    }

    pub fn nearest(&self, vector: &[f64], k: usize) -> Vec<String> {
        let Some(dimension) = self.dimension else {
            return Vec::new();
        };
        if dimension != vector.len() || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f64, usize)> = self
            .data
            .chunks_exact(dimension.max(1))
            .enumerate()
            .map(|(i, stored)| {
                (
                    stored
                        .iter()
                        .zip(vector)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>(),
                    i,
                )
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| self.names[i].clone())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64])> {
        let dimension = self.dimension.unwrap_or(0).max(1);
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.data.chunks_exact(dimension))
    }
}
