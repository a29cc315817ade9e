import concurrent.futures

import pytest

from knowledgebeast import KnowledgeBase, KnowledgeBaseHeartbeat, KnowledgeBeastConfig


def make(enable_vector=True, **config):
    config.setdefault("auto_warm", False)
    return KnowledgeBase(KnowledgeBeastConfig(**config), enable_vector=enable_vector)


def test_keyword_query_returns_every_match_best_first(corpus):
    with make() as kb:
        assert kb.ingest_all() == 5
        results = kb.query("audio processing", mode="keyword")
        ids = [doc_id for doc_id, _ in results]
        # Every document that contains a query term, and only those.
        assert set(ids) == {
            "knowledge-base/audio/librosa.md",
            "knowledge-base/audio/fft.md",
            "knowledge-base/juce/plugins.md",
            "knowledge-base/ml/intro.md",
        }
        doc_id, doc = results[0]
        assert set(doc) == {"path", "content", "name", "kb_dir"}
        assert doc["content"] == (corpus.parent / doc_id).read_text()
        assert doc["name"] == doc_id.rsplit("/", 1)[1][:-3]


def test_hybrid_without_vectors_is_keyword(corpus):
    with make(enable_vector=False) as kb:
        kb.ingest_all()
        assert kb.query("fft") == kb.query("fft", mode="keyword")


def test_cache_hits_and_invalidation(corpus):
    with make() as kb:
        kb.ingest_all()
        first = kb.query("juce framework")
        again = kb.query("juce framework")
        assert again == first
        stats = kb.get_stats()
        assert (stats["cache_hits"], stats["cache_misses"], stats["queries"]) == (1, 1, 2)
        assert stats["cache_hit_rate"] == "50.0%"
        # A hit is a new list (KnowledgeBeast hands out the cached list itself): a caller that
        # pages or sorts it in place leaves the cache alone (docs/compatibility.md).
        again.clear()
        assert kb.query("juce framework") == first and first
        kb.clear_cache()
        assert kb.get_stats()["cached_queries"] == 0
        # A new document shows up after ingest_all, never a stale cached answer.
        (corpus / "juce" / "more.md").write_text("# More\n\njuce again\n")
        kb.ingest_all()
        assert "knowledge-base/juce/more.md" in [d for d, _ in kb.query("juce framework")]


def test_stats_keys(corpus):
    with make() as kb:
        kb.ingest_all()
        stats = kb.get_stats()
    for key in (
        "queries", "cache_hits", "cache_misses", "warm_queries", "last_warm_time", "total_documents",
        "total_terms", "vector_queries", "keyword_queries", "hybrid_queries", "embeddings_generated",
        "total_queries", "cache_hit_rate", "cached_queries", "cache_capacity", "cache_utilization",
        "documents", "terms", "last_access_age", "knowledge_dirs",
    ):
        assert key in stats, key
    assert stats["total_documents"] == 5


def test_auto_warm_ingests_and_runs_warming_queries(corpus):
    kb = KnowledgeBase(KnowledgeBeastConfig())
    stats = kb.get_stats()
    assert stats["total_documents"] == 5 and stats["warm_queries"] == 7
    assert kb.query("audio processing") is not None
    assert kb.get_stats()["cache_hits"] == 1  # a warming query
    kb.close()


def test_rebuild_index_and_get_answer(corpus):
    with make() as kb:
        kb.ingest_all()
        (corpus / "notes.md").unlink()
        assert kb.rebuild_index() == 4
        answer = kb.get_answer("librosa")
        assert answer.startswith("📄 **librosa** (knowledge-base/audio/librosa.md)\n\n# Librosa")
        assert kb.get_answer("zzzunknownzzz") == "❌ No relevant documentation found."


def test_bad_input_raises_what_knowledgebeast_raises(corpus):
    with make() as kb:
        kb.ingest_all()
        for bad in ("", "   ", "\t\n"):
            with pytest.raises(ValueError, match="Search terms cannot be empty"):
                kb.query(bad)
        with pytest.raises(ValueError):
            kb.query("audio", alpha=1.5)
        with pytest.raises(ValueError):
            kb.query("audio", mode="fuzzy")
        with pytest.raises(TypeError):
            kb.query(None)
        # Nothing was lost.
        assert kb.get_stats()["total_documents"] == 5


def test_missing_knowledge_dir_is_skipped_with_a_warning(corpus):
    with pytest.warns(UserWarning, match="not found"):
        with make(knowledge_dirs=["knowledge-base", "nowhere"]) as kb:
            assert kb.ingest_all() == 5


def test_progress_callback(corpus):
    calls = []
    kb = KnowledgeBase(KnowledgeBeastConfig(auto_warm=False), progress_callback=lambda *a: calls.append(a))
    kb.ingest_all()
    assert len(calls) == 5 and all(msg.startswith("Ingesting ") for msg, _, _ in calls)


def test_threads_give_the_same_answers(corpus):
    with make() as kb:
        kb.ingest_all()
        queries = ["audio", "fft algorithm", "juce plugin", "machine learning", "video"] * 20
        expected = [kb.query(q, use_cache=False) for q in queries]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(lambda q: kb.query(q, use_cache=False), queries))
        assert got == expected


def test_heartbeat(corpus):
    kb = make()
    with pytest.raises(ValueError):
        KnowledgeBaseHeartbeat(kb, interval=5)
    hb = KnowledgeBaseHeartbeat(kb, interval=10)
    (corpus / "late.md").write_text("late document about juce\n")
    hb.beat()
    assert hb.get_status()["heartbeat_count"] == 1
    assert kb.get_stats()["total_documents"] == 6
    hb.start()
    assert hb.is_running()
    hb.stop()
    assert not hb.is_running()
