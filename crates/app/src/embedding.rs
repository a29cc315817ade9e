//! The sentence-embedding model behind the knowledge base's vector and hybrid search.
//!
//! The model (~90 MB of weights) loads on first use, so commands that never embed (keyword
//! queries, stats) do not pay for it; its fingerprint comes from its small configuration files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mneme_embed::{EmbedError, Embedder};

/// A model folder, loaded when first asked to embed.
pub struct LazyModel {
    dir: PathBuf,
    dim: usize,
    fingerprint: String,
    model: OnceLock<Result<Embedder, String>>,
}

impl std::fmt::Debug for LazyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyModel")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl LazyModel {
    /// Checks the folder (configuration files, tokenizer and weights present) without loading
    /// the weights.
    pub fn open(dir: &Path) -> Result<LazyModel, EmbedError> {
        let info = mneme_embed::describe(dir)?;
        Ok(LazyModel {
            dir: dir.to_path_buf(),
            dim: info.dim,
            fingerprint: info.fingerprint,
            model: OnceLock::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The loaded model (loading it now if needed).
    pub fn model(&self) -> Result<&Embedder, String> {
        self.model
            .get_or_init(|| Embedder::load(&self.dir).map_err(|err| err.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl mneme_kb::Embedder for LazyModel {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> String {
        self.dir.file_name().map_or_else(
            || self.dir.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn embed(
        &self,
        texts: &[&str],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, String> {
        self.model()?
            .embed_with_progress(texts, progress)
            .map_err(|err| err.to_string())
    }
}
