import pytest

from knowledgebeast import KnowledgeBeast, KnowledgeBeastConfig


def test_readme_flow(corpus):
    kb = KnowledgeBeast(KnowledgeBeastConfig())
    doc_id = kb.ingest_document(corpus / "audio" / "fft.md")
    assert doc_id == "knowledge-base/audio/fft.md"
    results = kb.query("fft algorithm", n_results=3)
    assert 1 <= len(results) <= 3
    top = results[0]
    assert set(top) == {"text", "metadata", "distance", "score"}
    assert top["metadata"]["doc_id"] == doc_id and "fft" in top["text"]
    assert kb.get_stats()["total_documents"] == 1
    kb.clear()
    assert kb.get_stats()["total_documents"] == 0
    kb.shutdown()


def test_facade_bad_input(corpus):
    with KnowledgeBeast() as kb:
        with pytest.raises(FileNotFoundError):
            kb.ingest_document("missing.md")
        with pytest.raises(ValueError):
            kb.ingest_document(corpus)
        with pytest.raises(ValueError, match="Search terms cannot be empty"):
            kb.query(" ")
