"""KnowledgeBase: KnowledgeBeast's legacy engine API over mneme's index (``mneme._native.Kb``).

Ranking, document text and the answer cache are Rust, with the GIL released while they work;
this module keeps KnowledgeBeast's signatures, counters and stats keys.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mneme._native import Kb

from .config import KnowledgeBeastConfig

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _options(config: KnowledgeBeastConfig, enable_vector: bool, embedding_model: str) -> Dict[str, Any]:
    if not enable_vector:
        model = "none"
    elif embedding_model == DEFAULT_MODEL:
        # The fetched model when present (scripts/fetch-model), else keyword-only.
        model = "auto"
    else:
        model = embedding_model
    return {
        "data_dir": str(config.data_dir),
        "index_dir": None,
        "knowledge_dirs": [str(d) for d in config.knowledge_dirs],
        "max_cache_size": int(config.max_cache_size),
        "max_workers": int(config.max_workers),
        "chunk_size": int(config.chunk_size),
        "chunk_overlap": int(config.chunk_overlap),
        "embedding_model": model,
        "warming_queries": list(config.warming_queries),
    }


class KnowledgeBase:
    """``KnowledgeBase(config=None, progress_callback=None, enable_vector=True,
    embedding_model="all-MiniLM-L6-v2")``; with ``config.auto_warm`` (the default) the
    constructor ingests the knowledge directories and runs the warming queries."""

    def __init__(
        self,
        config: Optional[KnowledgeBeastConfig] = None,
        progress_callback: Optional[Callable[[str, int, int], None]] = None,
        enable_vector: bool = True,
        embedding_model: str = DEFAULT_MODEL,
        vector_cache_size: int = 1000,
        persist_directory: Optional[str] = None,
    ):
        self.config = config if config is not None else KnowledgeBeastConfig()
        self.progress_callback = progress_callback
        self.enable_vector = enable_vector
        self.embedding_model = embedding_model
        self._kb = Kb(_options(self.config, enable_vector, embedding_model))
        self._warm_queries = 0
        self._last_warm_time: Optional[float] = None
        self._closed = False
        if self.config.auto_warm:
            self.warm_up()

    # -- ingestion -------------------------------------------------------------------------

    def _roots(self) -> List[str]:
        roots = []
        for d in self.config.knowledge_dirs:
            if Path(d).is_dir():
                roots.append(str(d))
            else:
                # KnowledgeBeast skips a missing knowledge directory with a warning.
                warnings.warn(f"Knowledge directory not found: {d}", stacklevel=3)
        return roots

    def _progress(self):
        if self.progress_callback is None or not self.config.enable_progress_callbacks:
            return None
        return self.progress_callback

    def ingest_all(self) -> int:
        """Indexes every document of the knowledge directories (unchanged files are skipped);
        returns the number of documents in the index."""
        report = self._kb.ingest(self._roots(), False, self._progress())
        return report["documents"]

    def rebuild_index(self) -> int:
        """Drops the query cache and re-indexes the knowledge directories from scratch."""
        self._kb.clear_cache()
        report = self._kb.ingest(self._roots(), True, self._progress())
        return report["documents"]

    def warm_up(self) -> None:
        """``ingest_all()`` then the warming queries, through the cache."""
        self.ingest_all()
        for q in self.config.warming_queries:
            if q.strip():
                self.query(q, use_cache=True)
                self._warm_queries += 1
        self._last_warm_time = time.time()

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        search_terms: str,
        use_cache: bool = True,
        mode: str = "hybrid",
        top_k: int = 10,
        alpha: Optional[float] = None,
    ) -> List[Tuple[str, Dict[str, str]]]:
        """``[(doc_id, {path, content, name, kb_dir})]``: every match in keyword mode (and in
        hybrid/vector mode without vectors), the top ``top_k`` otherwise."""
        if not isinstance(search_terms, str):
            raise TypeError("search_terms must be a string")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be between 0.0 and 1.0")
        return self._kb.query(search_terms, use_cache, mode, top_k, alpha, self.enable_vector)

    def get_answer(self, question: str, max_content_length: int = 500) -> str:
        results = self.query(question, use_cache=True, mode="keyword")
        if not results:
            return "❌ No relevant documentation found."
        doc_id, doc = results[0]
        content = doc["content"][:max_content_length]
        return f"📄 **{doc['name']}** ({doc_id})\n\n{content}..."

    # -- cache and stats -------------------------------------------------------------------

    def clear_cache(self) -> None:
        self._kb.clear_cache()

    def get_stats(self) -> Dict[str, Any]:
        s = self._kb.stats()
        total = s["cache_hits"] + s["cache_misses"]
        hit_rate = (s["cache_hits"] / total * 100.0) if total else 0.0
        capacity = s["cache_capacity"]
        age = s["last_access_seconds"]
        return {
            "queries": s["queries"],
            "cache_hits": s["cache_hits"],
            "cache_misses": s["cache_misses"],
            "warm_queries": self._warm_queries,
            "last_warm_time": self._last_warm_time,
            "total_documents": s["documents"],
            "total_terms": s["terms"],
            "vector_queries": s["vector_queries"],
            "keyword_queries": s["keyword_queries"],
            "hybrid_queries": s["hybrid_queries"],
            "embeddings_generated": s["embeddings_generated"],
            "total_queries": total,
            "cache_hit_rate": f"{hit_rate:.1f}%",
            "cached_queries": s["cached_queries"],
            "cache_capacity": capacity,
            "cache_utilization": f"{(s['cached_queries'] / capacity * 100.0) if capacity else 0.0:.1f}%",
            "documents": s["documents"],
            "terms": s["terms"],
            "last_access_age": "never" if age is None else f"{age:.1f}s ago",
            "knowledge_dirs": [str(d) for d in self.config.knowledge_dirs],
            # mneme's additions
            "chunks": s["chunks"],
            "generation": s["generation"],
            "vectors": s["vectors"],
            "embedding_model": s["embedding_model"],
        }

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._kb.persist()
            except OSError:
                pass

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["KnowledgeBase", "KnowledgeBeastConfig"]
