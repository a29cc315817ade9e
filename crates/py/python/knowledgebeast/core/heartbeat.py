"""KnowledgeBaseHeartbeat: a daemon thread that keeps a KnowledgeBase fresh and warm."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Dict, Optional

from .config import DEFAULT_WARMING_QUERIES

logger = logging.getLogger("knowledgebeast.heartbeat")


class KnowledgeBaseHeartbeat:
    """Every ``interval`` seconds (at least 10): re-ingest when a document is newer than the
    last beat (unchanged files cost a stat each), then run one warming query."""

    def __init__(self, kb, interval: int = 300):
        if interval < 10:
            raise ValueError("Heartbeat interval must be at least 10 seconds")
        self.kb = kb
        self.interval = interval
        self.heartbeat_count = 0
        self.last_heartbeat: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self.is_running():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kb-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def beat(self) -> None:
        """One heartbeat, now (the thread calls it every ``interval``)."""
        self.kb.ingest_all()
        queries = [q for q in getattr(self.kb.config, "warming_queries", []) if q.strip()] or DEFAULT_WARMING_QUERIES
        self.kb.query(random.choice(queries), use_cache=True)
        self.heartbeat_count += 1
        self.last_heartbeat = time.time()
        stats = self.kb.get_stats()
        logger.info(
            "heartbeat %d: %s docs, %s queries, hit rate %s, last access %s",
            self.heartbeat_count,
            stats["total_documents"],
            stats["queries"],
            stats["cache_hit_rate"],
            stats["last_access_age"],
        )

    def get_status(self) -> Dict[str, Any]:
        return {
            "running": self.is_running(),
            "interval": self.interval,
            "heartbeat_count": self.heartbeat_count,
            "last_heartbeat": self.last_heartbeat,
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a failing beat is logged; the heartbeat goes on
                logger.exception("heartbeat failed")

    def __enter__(self) -> "KnowledgeBaseHeartbeat":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
