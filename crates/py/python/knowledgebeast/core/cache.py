"""LRUCache: KnowledgeBeast's thread-safe LRU cache (``LRUCache[str, list](capacity=100)``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Dict, Generic, Hashable, Optional, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Least recently used first out: ``get`` and ``put`` make an entry the most recent."""

    def __init__(self, capacity: int = 100):
        if capacity <= 0:
            raise ValueError("Capacity must be positive")
        self.capacity = capacity
        self._data: "OrderedDict[K, V]" = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: K) -> Optional[V]:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
            self._data[key] = value
            if len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def size(self) -> int:
        with self._lock:
            return len(self._data)

    def stats(self) -> Dict[str, float]:
        with self._lock:
            size = len(self._data)
            return {"size": size, "capacity": self.capacity, "utilization": size / self.capacity}

    def __len__(self) -> int:
        return self.size()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data
