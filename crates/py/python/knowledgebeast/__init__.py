"""knowledgebeast, by mneme: KnowledgeBeast's Python library on mneme's Rust engine.

``KnowledgeBase`` / ``KnowledgeBeastConfig`` (``knowledgebeast.core``) are the legacy engine its
performance guide uses; ``KnowledgeBeast`` is the facade of its README and examples (which the
original never shipped in a working form): chunked passages, top ``n_results``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from mneme._native import VERSION as __version__

from .core import KnowledgeBase, KnowledgeBaseHeartbeat, KnowledgeBeastConfig, LRUCache


class KnowledgeBeast:
    """``KnowledgeBeast(config=None)``: ``ingest_document(path)``, ``query(text, n_results=5)``
    (``[{text, metadata, distance, score}]``), ``get_stats()``, ``clear()``, ``shutdown()``."""

    def __init__(self, config: Optional[KnowledgeBeastConfig] = None, **kwargs: Any):
        if config is None:
            config = KnowledgeBeastConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a KnowledgeBeastConfig or keyword arguments, not both")
        config.auto_warm = False
        self.config = config
        self._base = KnowledgeBase(config, enable_vector=config.use_vector_search)
        self._heartbeat: Optional[KnowledgeBaseHeartbeat] = None

    @property
    def knowledge_base(self) -> KnowledgeBase:
        return self._base

    def ingest_document(self, path: Union[str, Path]) -> str:
        """Indexes one file; returns its doc_id. A missing file raises FileNotFoundError."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"File not found: {path}")
        if not path.is_file():
            raise ValueError(f"Path is not a file: {path}")
        report = self._base._kb.ingest([str(path)], False, None)
        for source, kind, detail in report["problems"]:
            raise ValueError(f"could not ingest {source}: {kind}: {detail}")
        found = self._base._kb.document_of_path(str(path))
        if found is None:
            raise ValueError(f"{path} was not indexed (unsupported format or ignored)")
        return found[0]

    def ingest_directory(self, path: Union[str, Path]) -> int:
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"Directory not found: {path}")
        return self._base._kb.ingest([str(path)], False, None)["documents"]

    def query(self, text: str, n_results: int = 5, use_cache: bool = True, mode: Optional[str] = None) -> List[Dict[str, Any]]:
        return self._base._kb.passages(text, n_results, use_cache, mode)

    def get_stats(self) -> Dict[str, Any]:
        stats = self._base.get_stats()
        stats["heartbeat_running"] = self._heartbeat is not None and self._heartbeat.is_running()
        return stats

    def clear(self) -> None:
        """Empties the index and the caches."""
        self._base._kb.ingest([], True, None)
        self._base.clear_cache()

    def clear_cache(self) -> None:
        self._base.clear_cache()

    def warm_cache(self) -> None:
        for q in self.config.warming_queries:
            if q.strip():
                self.query(q)

    def start_heartbeat(self, interval: Optional[int] = None) -> None:
        if self._heartbeat is None:
            self._heartbeat = KnowledgeBaseHeartbeat(self._base, interval or self.config.heartbeat_interval)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def shutdown(self) -> None:
        self.stop_heartbeat()
        self._base.close()

    def __enter__(self) -> "KnowledgeBeast":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


__all__ = [
    "KnowledgeBase",
    "KnowledgeBaseHeartbeat",
    "KnowledgeBeast",
    "KnowledgeBeastConfig",
    "LRUCache",
    "__version__",
]
