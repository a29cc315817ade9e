//! Sentence embeddings on the CPU.
//!
//! [`Embedder`] loads a local sentence-transformers folder holding a BERT encoder
//! (`config.json`, `tokenizer.json`, `model.safetensors`, `1_Pooling/config.json`,
//! `modules.json`, `sentence_bert_config.json`) — all-MiniLM-L6-v2 is the one mneme ships a
//! fetch script for — and turns texts into unit vectors the way sentence-transformers does:
//!
//! 1. tokenize with the folder's `tokenizer.json`, truncated at `max_seq_length` (256 for
//!    MiniLM; the file itself says 128 and pads to a fixed 128, both of which
//!    sentence-transformers overrides, and so do we);
//! 2. the BERT encoder (`forward`), a batch at a time, padded to the batch's longest text
//!    with the attention mask hiding the padding;
//! 3. the pooling of `1_Pooling/config.json` (mean over real tokens for MiniLM, or CLS);
//! 4. L2 normalisation when `modules.json` lists a `Normalize` module.
//!
//! Texts are sorted by length before batching so that a batch pads little, and the answer
//! comes back in the caller's order. The matrix products run on candle's CPU backend
//! (gemm, multi-threaded with rayon).
//!
//! The outputs equal sentence-transformers' to about 1e-6 per component (the test data in
//! `tests/data` says how they were produced).

mod bert;
mod error;
mod fast;
mod kernels;
mod simd;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

pub use crate::error::EmbedError;

use crate::bert::{Bert, BertConfig};
use crate::fast::FastBert;
use crate::kernels::Kernels;

/// How many texts go through the encoder together.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// How token vectors become one vector per text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the real (non-padding) token vectors.
    Mean,
    /// The vector of the first (`[CLS]`) token.
    Cls,
}

/// The number format of the encoder's matrix products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 throughout (candle): sentence-transformers' vectors to about 1e-6.
    F32,
    /// bf16 operands with f32 accumulation, f32 everywhere else (`fast.rs`): on AMX tiles
    /// where the processor has them, 4-6 times faster than f32; cosine with the f32 vector
    /// above 0.999 (the accuracy tests hold it to 0.995 and to the retrieval figures).
    Bf16,
}

impl Precision {
    /// The default: bf16 where AMX makes it fast, f32 elsewhere (where bf16 would run on the
    /// portable kernels, slower than candle's f32). `MNEME_EMBED_PRECISION=f32|bf16|auto`
    /// chooses.
    pub fn default_for_this_machine() -> Result<Precision, EmbedError> {
        Precision::from_setting(std::env::var("MNEME_EMBED_PRECISION").ok().as_deref())
    }

    /// The precision a setting names (`f32`, `bf16`, or `auto` / empty / none: this
    /// machine's default).
    pub fn from_setting(value: Option<&str>) -> Result<Precision, EmbedError> {
        match value.map(str::trim) {
            None | Some("") | Some("auto") => Ok(match Kernels::detect() {
                Kernels::Amx(_) => Precision::Bf16,
                Kernels::Portable => Precision::F32,
            }),
            Some("f32") | Some("fp32") => Ok(Precision::F32),
            Some("bf16") => Ok(Precision::Bf16),
            Some(other) => Err(EmbedError::Unsupported(format!(
                "MNEME_EMBED_PRECISION={other:?} (expected f32, bf16 or auto)"
            ))),
        }
    }
}

enum Encoder {
    F32(Bert),
    Bf16(FastBert),
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    tokenizer: Tokenizer,
    encoder: Encoder,
    hidden: usize,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
    batch_size: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dim", &self.dim())
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .field("max_seq_length", &self.max_seq_length)
            .field("kernels", &self.kernels())
            .finish()
    }
}

impl Embedder {
    /// Loads the sentence-transformers folder `dir`, in this machine's default precision
    /// ([`Precision::default_for_this_machine`]).
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::load_with(dir, Precision::default_for_this_machine()?)
    }

    /// Loads `dir` in `precision`. bf16 runs on AMX when this process can use it and on the
    /// portable kernels otherwise; a model the bf16 encoder cannot run (heads other than 32
    /// dimensions) falls back to f32.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Embedder, EmbedError> {
        Embedder::load_inner(dir, precision, Kernels::detect())
    }

    /// bf16 on the portable kernels, whatever the processor (tests compare them with AMX).
    #[doc(hidden)]
    pub fn load_portable_bf16(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::load_inner(dir, Precision::Bf16, Kernels::Portable)
    }

    fn load_inner(
        dir: &Path,
        precision: Precision,
        kernels: Kernels,
    ) -> Result<Embedder, EmbedError> {
        let Settings {
            config,
            pooling,
            normalize,
            max_seq_length,
        } = Settings::read(dir)?;
        if config.model_type.as_deref().is_some_and(|t| t != "bert") {
            return Err(EmbedError::Unsupported(format!(
                "model_type {:?} (only BERT encoders are supported)",
                config.model_type.as_deref().unwrap_or("")
            )));
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|err| EmbedError::Tokenizer {
                path: tokenizer_path.clone(),
                message: err.to_string(),
            })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|err| EmbedError::Tokenizer {
                path: tokenizer_path,
                message: err.to_string(),
            })?;

        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            return Err(EmbedError::Missing(weights_path));
        }
        let weights =
            candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|err| {
                EmbedError::Weights {
                    path: weights_path.clone(),
                    message: err.to_string(),
                }
            })?;
        let hidden = config.hidden_size;
        let weights_error = |message| EmbedError::Weights {
            path: weights_path.clone(),
            message,
        };
        let encoder = if precision == Precision::Bf16 && fast::unsupported(&config).is_none() {
            Encoder::Bf16(FastBert::new(&config, weights, kernels).map_err(weights_error)?)
        } else {
            Encoder::F32(Bert::new(config, weights).map_err(weights_error)?)
        };
        Ok(Embedder {
            tokenizer,
            encoder,
            hidden,
            pooling,
            normalize,
            max_seq_length,
            batch_size: DEFAULT_BATCH_SIZE,
            dir: dir.to_path_buf(),
        })
    }

    /// Sets how many texts run through the encoder together (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Embedder {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The length of the vectors.
    pub fn dim(&self) -> usize {
        self.hidden
    }

    /// The precision the encoder runs in.
    pub fn precision(&self) -> Precision {
        match self.encoder {
            Encoder::F32(_) => Precision::F32,
            Encoder::Bf16(_) => Precision::Bf16,
        }
    }

    /// What runs the matrix products: `candle-f32`, `amx-bf16` or `portable-bf16`.
    pub fn kernels(&self) -> &'static str {
        match &self.encoder {
            Encoder::F32(_) => "candle-f32",
            Encoder::Bf16(fast) => fast.kernels().name(),
        }
    }

    /// The folder the model came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Tokens a text is cut to.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Number of tokens `text` becomes (with `[CLS]` and `[SEP]`, after truncation).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|err| EmbedError::Encode(err.to_string()))?;
        Ok(encoding.len())
    }

    /// One vector per text, in order.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_progress(texts, |_| {})
    }

    /// Like [`Embedder::embed`], calling `progress(n)` after each batch of `n` texts (from
    /// any thread: batches run in parallel on rayon's pool).
    pub fn embed_with_progress<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        progress: impl Fn(usize) + Sync,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        use rayon::prelude::*;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|err| EmbedError::Encode(err.to_string()))?;
        // Longest first: batches of similar lengths pad little.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));

        let batches: Vec<Vec<Vec<f32>>> = order
            .par_chunks(self.batch_size)
            .map(|batch| {
                let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
                let vectors = self.embed_ids(&ids)?;
                progress(batch.len());
                Ok(vectors)
            })
            .collect::<Result<_, EmbedError>>()?;
        let mut out = vec![Vec::new(); encodings.len()];
        for (&i, vector) in order.iter().zip(batches.into_iter().flatten()) {
            out[i] = vector;
        }
        Ok(out)
    }

    /// Runs the encoder on token ids (each with `[CLS]` … `[SEP]`), one vector per row.
    fn embed_ids(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let bert = match &self.encoder {
            Encoder::Bf16(fast) => {
                return fast
                    .embed(rows, self.pooling, self.normalize)
                    .map_err(EmbedError::Compute);
            }
            Encoder::F32(bert) => bert,
        };
        let batch = rows.len();
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; batch * len];
        let mut mask = vec![0f32; batch * len];
        for (b, row) in rows.iter().enumerate() {
            ids[b * len..b * len + row.len()].copy_from_slice(row);
            mask[b * len..b * len + row.len()].fill(1.0);
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (batch, len), &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, (batch, len), &Device::Cpu)?;
            let hidden = bert.forward(&ids, &mask)?; // (batch, len, dim)
            let pooled = match self.pooling {
                Pooling::Mean => {
                    let summed = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
                    let counts = mask.sum_keepdim(1)?.clamp(1e-9f32, f32::MAX)?;
                    summed.broadcast_div(&counts)?
                }
                Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            };
            let pooled = if self.normalize {
                let norms = pooled
                    .sqr()?
                    .sum_keepdim(1)?
                    .sqrt()?
                    .clamp(1e-12f32, f32::MAX)?;
                pooled.broadcast_div(&norms)?
            } else {
                pooled
            };
            pooled.to_dtype(DType::F32)?.to_vec2::<f32>()
        };
        run().map_err(|err| EmbedError::Compute(err.to_string()))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => EmbedError::Missing(path.to_path_buf()),
        _ => EmbedError::Io {
            path: path.to_path_buf(),
            source: err,
        },
    })?;
    serde_json::from_str(&text).map_err(|err| EmbedError::Config {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// The pooling of `1_Pooling/config.json`; mean when the folder has none (what
/// sentence-transformers does for a plain transformers folder).
fn read_pooling(dir: &Path) -> Result<Pooling, EmbedError> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.is_file() {
        return Ok(Pooling::Mean);
    }
    let config: PoolingConfig = read_json(&path)?;
    match (
        config.pooling_mode_mean_tokens,
        config.pooling_mode_cls_token,
        config.pooling_mode_max_tokens || config.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false) => Ok(Pooling::Mean),
        (false, true, false) => Ok(Pooling::Cls),
        _ => Err(EmbedError::Unsupported(format!(
            "the pooling in {} (mean or CLS only)",
            path.display()
        ))),
    }
}

#[derive(serde::Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

/// Whether `modules.json` ends with a `Normalize` module.
fn read_normalize(dir: &Path) -> Result<bool, EmbedError> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok(false);
    }
    let modules: Vec<ModuleEntry> = read_json(&path)?;
    Ok(modules.iter().any(|m| m.kind.ends_with("Normalize")))
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

fn read_max_seq_length(dir: &Path) -> Result<Option<usize>, EmbedError> {
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let config: SentenceBertConfig = read_json(&path)?;
    Ok(config.max_seq_length)
}

/// What a model folder says about itself, read from its small configuration files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub dim: usize,
    /// Changes when the model or how texts become vectors changes: the folder name, vector
    /// length, pooling, normalisation, token limit and the size of the weights file.
    pub fingerprint: String,
}

/// Checks that `dir` is a usable model folder and describes it, without loading the weights.
pub fn describe(dir: &Path) -> Result<ModelInfo, EmbedError> {
    let settings = Settings::read(dir)?;
    for name in ["tokenizer.json", "model.safetensors"] {
        if !dir.join(name).is_file() {
            return Err(EmbedError::Missing(dir.join(name)));
        }
    }
    let weights = std::fs::metadata(dir.join("model.safetensors")).map_or(0, |m| m.len());
    Ok(ModelInfo {
        dim: settings.config.hidden_size,
        fingerprint: fingerprint(dir, &settings, weights),
    })
}

/// What the folder's small configuration files say.
struct Settings {
    config: BertConfig,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
}

impl Settings {
    fn read(dir: &Path) -> Result<Settings, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::NotAFolder(dir.to_path_buf()));
        }
        let config: BertConfig = read_json(&dir.join("config.json"))?;
        let max_seq_length = read_max_seq_length(dir)?
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        Ok(Settings {
            pooling: read_pooling(dir)?,
            normalize: read_normalize(dir)?,
            max_seq_length,
            config,
        })
    }
}

fn fingerprint(dir: &Path, settings: &Settings, weights: u64) -> String {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!(
        "{name}:{}:{:?}:{}:{}:{weights}",
        settings.config.hidden_size, settings.pooling, settings.normalize, settings.max_seq_length
    )
}

/// The model folder the test suites use: `MNEME_TEST_MODEL`, else the all-MiniLM-L6-v2 that
/// `scripts/fetch-model` puts in the repository's `.mneme` (`scripts/test` runs it first).
/// Panics with how to get it when it is missing, so that model tests never skip silently.
#[doc(hidden)]
pub fn test_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MNEME_TEST_MODEL") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.mneme/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the embedding model is missing: run scripts/fetch-model (scripts/test does) or set MNEME_TEST_MODEL"
    );
    dir
}

/// Cosine similarity of two vectors (the dot product when both are unit vectors).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}
