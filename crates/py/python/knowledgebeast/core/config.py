"""KnowledgeBeastConfig: KnowledgeBeast's configuration dataclass, with its fields, defaults,
validation and ``KB_*`` environment overrides (applied at construction, as its
``__post_init__`` does).

mneme adds one field, ``data_dir`` (default ``$MNEME_DATA_DIR``, else ``.mneme``): the index
lives in ``<data_dir>/kb`` and the embedding model in ``<data_dir>/models``. Fields that only
KnowledgeBeast's unused code read (query expansion, semantic cache, chromadb_path, ...) are kept
and validated, and have no effect, as in the original.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

DEFAULT_WARMING_QUERIES = [
    "audio processing",
    "juce framework",
    "librosa analysis",
    "machine learning",
    "signal processing",
    "real-time audio",
    "plugin development",
]

_TRUE = ("true", "1", "yes")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in _TRUE


def _env_int(name: str, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _env_float(name: str, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass
class KnowledgeBeastConfig:
    knowledge_dirs: List[Path] = field(default_factory=lambda: [Path("knowledge-base")])
    cache_file: Path = Path(".knowledge_cache.pkl")
    max_cache_size: int = 100
    heartbeat_interval: int = 300
    auto_warm: bool = True
    warming_queries: List[str] = field(default_factory=lambda: list(DEFAULT_WARMING_QUERIES))
    enable_progress_callbacks: bool = True
    verbose: bool = True
    max_workers: Optional[int] = None
    embedding_model: str = "all-MiniLM-L6-v2"
    vector_search_mode: str = "hybrid"
    chunk_size: int = 1000
    chunk_overlap: int = 200
    use_vector_search: bool = True
    chromadb_path: Path = Path("./data/chromadb")
    query_expansion_enabled: bool = True
    query_expansion_synonyms: bool = True
    query_expansion_acronyms: bool = True
    query_expansion_max_expansions: int = 3
    semantic_cache_enabled: bool = True
    semantic_cache_similarity_threshold: float = 0.95
    semantic_cache_ttl_seconds: int = 3600
    semantic_cache_max_entries: int = 10000
    # mneme: where the index (<data_dir>/kb) and the model (<data_dir>/models) live.
    data_dir: Optional[Path] = None

    def __post_init__(self) -> None:
        env = os.environ
        if "KB_KNOWLEDGE_DIRS" in env:
            self.knowledge_dirs = [Path(d.strip()) for d in env["KB_KNOWLEDGE_DIRS"].split(",") if d.strip()]
        if "KB_CACHE_FILE" in env:
            self.cache_file = Path(env["KB_CACHE_FILE"])
        self.max_cache_size = _env_int("KB_MAX_CACHE_SIZE", self.max_cache_size)
        self.heartbeat_interval = _env_int("KB_HEARTBEAT_INTERVAL", self.heartbeat_interval)
        self.auto_warm = _env_bool("KB_AUTO_WARM", self.auto_warm)
        self.max_workers = _env_int("KB_MAX_WORKERS", self.max_workers)
        self.embedding_model = env.get("KB_EMBEDDING_MODEL", self.embedding_model)
        self.vector_search_mode = env.get("KB_VECTOR_SEARCH_MODE", self.vector_search_mode)
        self.chunk_size = _env_int("KB_CHUNK_SIZE", self.chunk_size)
        self.chunk_overlap = _env_int("KB_CHUNK_OVERLAP", self.chunk_overlap)
        self.use_vector_search = _env_bool("KB_USE_VECTOR_SEARCH", self.use_vector_search)
        if "KB_CHROMADB_PATH" in env:
            self.chromadb_path = Path(env["KB_CHROMADB_PATH"])
        self.query_expansion_enabled = _env_bool("KB_QUERY_EXPANSION_ENABLED", self.query_expansion_enabled)
        self.query_expansion_synonyms = _env_bool("KB_QUERY_EXPANSION_SYNONYMS", self.query_expansion_synonyms)
        self.query_expansion_acronyms = _env_bool("KB_QUERY_EXPANSION_ACRONYMS", self.query_expansion_acronyms)
        self.query_expansion_max_expansions = _env_int(
            "KB_QUERY_EXPANSION_MAX_EXPANSIONS", self.query_expansion_max_expansions
        )
        self.semantic_cache_enabled = _env_bool("KB_SEMANTIC_CACHE_ENABLED", self.semantic_cache_enabled)
        self.semantic_cache_similarity_threshold = _env_float(
            "KB_SEMANTIC_CACHE_SIMILARITY_THRESHOLD", self.semantic_cache_similarity_threshold
        )
        self.semantic_cache_ttl_seconds = _env_int("KB_SEMANTIC_CACHE_TTL_SECONDS", self.semantic_cache_ttl_seconds)
        self.semantic_cache_max_entries = _env_int("KB_SEMANTIC_CACHE_MAX_ENTRIES", self.semantic_cache_max_entries)
        if self.data_dir is None:
            self.data_dir = Path(env.get("MNEME_DATA_DIR", ".mneme"))

        self.knowledge_dirs = [Path(d) for d in self.knowledge_dirs]
        self.cache_file = Path(self.cache_file)
        self.data_dir = Path(self.data_dir)
        if self.max_workers is None:
            self.max_workers = os.cpu_count() or 1

        if not self.knowledge_dirs:
            raise ValueError("At least one knowledge directory must be specified")
        if self.max_cache_size <= 0:
            raise ValueError("max_cache_size must be positive")
        if self.heartbeat_interval < 10:
            raise ValueError("heartbeat_interval must be at least 10 seconds")
        if self.max_workers <= 0:
            raise ValueError("max_workers must be positive")
        if self.vector_search_mode not in ("vector", "keyword", "hybrid"):
            raise ValueError("vector_search_mode must be 'vector', 'keyword', or 'hybrid'")
        if self.chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if self.chunk_overlap < 0:
            raise ValueError("chunk_overlap must be non-negative")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be less than chunk_size")
        if self.query_expansion_max_expansions < 0:
            raise ValueError("query_expansion_max_expansions must be non-negative")
        if not 0.0 <= self.semantic_cache_similarity_threshold <= 1.0:
            raise ValueError("semantic_cache_similarity_threshold must be between 0.0 and 1.0")
        if self.semantic_cache_ttl_seconds <= 0:
            raise ValueError("semantic_cache_ttl_seconds must be positive")
        if self.semantic_cache_max_entries <= 0:
            raise ValueError("semantic_cache_max_entries must be positive")
