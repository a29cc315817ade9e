use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "{0} is not a folder: point the embedding model setting (KB_EMBEDDING_MODEL) at a sentence-transformers folder, or run scripts/fetch-model to fetch all-MiniLM-L6-v2"
    )]
    NotAFolder(PathBuf),
    #[error(
        "the model folder has no {0}: is it a sentence-transformers folder? (scripts/fetch-model fetches one)"
    )]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid model configuration: {message}")]
    Config { path: PathBuf, message: String },
    #[error("cannot load the tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot load the weights {path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("tokenizing failed: {0}")]
    Encode(String),
    #[error("the encoder failed: {0}")]
    Compute(String),
}
