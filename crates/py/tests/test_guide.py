"""The library snippets of KnowledgeBeast's performance guide (../shared/seeds/000_*.txt), run
as written except for the knowledge directory (the corpus fixture's) and added assertions."""

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from knowledgebeast import KnowledgeBase, KnowledgeBeastConfig, LRUCache


def test_automatic_cache_warming(corpus):
    config = KnowledgeBeastConfig(
        knowledge_dirs=[Path("knowledge-base")],
        auto_warm=True,
        warming_queries=["most common user queries", "key technical terms", "frequent search patterns"],
    )
    kb = KnowledgeBase(config)
    kb.ingest_all()  # Warming happens after ingestion
    assert kb.get_stats()["warm_queries"] == 3


def test_manual_cache_warming(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False))
    kb.ingest_all()
    common_queries = ["audio processing", "machine learning", "data analysis"]
    for query in common_queries:
        kb.query(query, use_cache=True)
    for query in common_queries:
        kb.query(query, use_cache=True)
    stats = kb.get_stats()
    assert stats["cache_hits"] == 3
    # BAD: cache never populated / GOOD: populated
    kb.query("test", use_cache=False)
    assert kb.get_stats()["cached_queries"] == 3
    kb.query("test", use_cache=True)
    assert kb.get_stats()["cached_queries"] == 4


def test_cache_key_is_normalised_terms(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False, max_cache_size=1000))
    kb.ingest_all()
    kb.query("Audio Processing")
    kb.query("processing audio")
    kb.query("AUDIO PROCESSING")
    stats = kb.get_stats()
    assert (stats["cache_misses"], stats["cache_hits"], stats["cached_queries"]) == (1, 2, 1)


def test_ingestion_invalidates_the_cache(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False))
    kb.ingest_all()
    before = kb.query("codecs")
    (corpus / "codecs.md").write_text("codecs codecs\n")
    kb.ingest_all()  # Old cache cleared, new index built
    after = kb.query("codecs")
    assert len(after) == len(before) + 1


def test_pagination(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False))
    kb.ingest_all()
    results = kb.query("audio")
    page_size = 2
    page = 0
    paginated_results = results[page * page_size:(page + 1) * page_size]
    assert paginated_results == results[:2]

    def paginate_results(results, page=0, page_size=10):
        start = page * page_size
        end = start + page_size
        return {
            "results": results[start:end],
            "total": len(results),
            "page": page,
            "page_size": page_size,
            "total_pages": (len(results) + page_size - 1) // page_size,
        }

    page_data = paginate_results(kb.query("audio processing"), page=0, page_size=10)
    assert page_data["total"] == 4 and page_data["total_pages"] == 1


def test_worker_settings(corpus, monkeypatch):
    assert KnowledgeBeastConfig(knowledge_dirs=[Path("knowledge-base")], max_workers=None).max_workers >= 1
    assert KnowledgeBeastConfig(max_workers=4).max_workers == 4
    assert KnowledgeBeastConfig(max_workers=multiprocessing.cpu_count() * 2).max_workers > 0
    monkeypatch.setenv("KB_MAX_WORKERS", "8")
    assert KnowledgeBeastConfig().max_workers == 8


def test_ingest_by_category(corpus):
    counts = {}
    for category in sorted(p for p in corpus.iterdir() if p.is_dir()):
        config = KnowledgeBeastConfig(knowledge_dirs=[category], max_workers=4, auto_warm=False,
                                      data_dir=corpus.parent / "by-category" / category.name)
        kb = KnowledgeBase(config)
        kb.ingest_all()
        counts[category.name] = kb.get_stats()["total_documents"]
    assert counts == {"audio": 2, "juce": 1, "ml": 1}


def test_lru_eviction_characteristics():
    cache = LRUCache[str, list](capacity=100)
    for i in range(100):
        cache.put(f"key_{i}", f"value_{i}")
    cache.put("key_100", "value_100")
    assert cache.get("key_0") is None  # key_0 evicted (least recently used)
    cache.get("key_1")  # Now most recently used
    cache.put("key_101", "value_101")
    assert cache.get("key_1") == "value_1" and cache.get("key_2") is None


def test_thread_pool_of_queries(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False))
    kb.ingest_all()
    queries = ["audio", "juce", "fft", "machine learning"] * 25
    with ThreadPoolExecutor(max_workers=10) as executor:
        results = list(executor.map(kb.query, queries))
    assert [len(r) for r in results[:4]] == [len(kb.query(q)) for q in queries[:4]]
    assert kb.get_stats()["queries"] == 104
