import threading

import pytest

from knowledgebeast import LRUCache


def test_generic_subscript_and_eviction_order():
    cache = LRUCache[str, list](capacity=3)
    for k in "abc":
        cache.put(k, [k])
    assert cache.get("a") == ["a"]  # a is now the most recent
    cache.put("d", ["d"])  # evicts b, the least recently used
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [["a"], ["c"], ["d"]]
    assert cache.stats() == {"size": 3, "capacity": 3, "utilization": 1.0}


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        LRUCache(capacity=0)


def test_guide_fill_and_threads():
    cache = LRUCache[str, list](capacity=100)
    for i in range(100):
        cache.put(f"query_{i}", [i])
    cache.put("query_100", [100])
    assert cache.get("query_0") is None and len(cache) == 100

    def worker(n):
        for i in range(1000):
            cache.put(f"{n}-{i}", [i])
            cache.get(f"{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 100
