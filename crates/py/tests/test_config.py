from pathlib import Path

import pytest

from knowledgebeast.core.config import KnowledgeBeastConfig


def test_defaults(corpus):
    c = KnowledgeBeastConfig()
    assert c.knowledge_dirs == [Path("knowledge-base")]
    assert c.cache_file == Path(".knowledge_cache.pkl")
    assert c.max_cache_size == 100
    assert c.heartbeat_interval == 300
    assert c.auto_warm is True
    assert len(c.warming_queries) == 7
    assert c.max_workers >= 1
    assert c.embedding_model == "all-MiniLM-L6-v2"
    assert (c.chunk_size, c.chunk_overlap) == (1000, 200)
    assert c.semantic_cache_similarity_threshold == 0.95


def test_env_overrides_at_construction(corpus, monkeypatch):
    monkeypatch.setenv("KB_KNOWLEDGE_DIRS", "a, b")
    monkeypatch.setenv("KB_MAX_CACHE_SIZE", "7")
    monkeypatch.setenv("KB_AUTO_WARM", "no")
    monkeypatch.setenv("KB_MAX_WORKERS", "3")
    monkeypatch.setenv("KB_HEARTBEAT_INTERVAL", "60")
    c = KnowledgeBeastConfig(max_cache_size=500)
    assert c.knowledge_dirs == [Path("a"), Path("b")]
    assert c.max_cache_size == 7  # the environment wins, as in __post_init__
    assert c.auto_warm is False
    assert c.max_workers == 3
    assert c.heartbeat_interval == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"knowledge_dirs": []},
        {"max_cache_size": 0},
        {"heartbeat_interval": 5},
        {"max_workers": 0},
        {"chunk_size": 100, "chunk_overlap": 100},
        {"vector_search_mode": "fuzzy"},
        {"semantic_cache_similarity_threshold": 1.5},
    ],
)
def test_invalid_values_raise_value_error(corpus, kwargs):
    with pytest.raises(ValueError):
        KnowledgeBeastConfig(**kwargs)


def test_bad_env_value_is_a_clear_error(corpus, monkeypatch):
    monkeypatch.setenv("KB_MAX_CACHE_SIZE", "lots")
    with pytest.raises(ValueError, match="KB_MAX_CACHE_SIZE"):
        KnowledgeBeastConfig()
