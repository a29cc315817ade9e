"""`query(mode="terms")` returns KnowledgeBeast's keyword answer, document for document, on the
260 queries recorded from KnowledgeBeast 0.1.0 (test-data/knowledgebeast-terms-golden.json)."""

import json
import subprocess
import sys
from pathlib import Path

from knowledgebeast import KnowledgeBase, KnowledgeBeastConfig

TEST_DATA = Path(__file__).resolve().parents[3] / "test-data"


def test_terms_mode_matches_recorded_knowledgebeast_answers(tmp_path, monkeypatch):
    golden = json.loads((TEST_DATA / "knowledgebeast-terms-golden.json").read_text())
    subprocess.run(
        [sys.executable, str(TEST_DATA / "gen_corpus.py"), str(tmp_path / "corpus"), "--docs", "1000"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    monkeypatch.chdir(tmp_path / "corpus")
    kb = KnowledgeBase(
        KnowledgeBeastConfig(knowledge_dirs=[Path("knowledge")], auto_warm=False, data_dir=tmp_path / "data"),
        enable_vector=False,
    )
    assert kb.ingest_all() == 1000
    mismatches = []
    for case in golden["queries"]:
        # Groups of equal score, best first; mneme orders ties by doc_id.
        expected = [doc_id for _, ids in case["groups"] for doc_id in sorted(ids)]
        got = [doc_id for doc_id, _ in kb.query(case["query"], use_cache=False, mode="terms")]
        if got != expected:
            mismatches.append(case["query"])
    assert len(golden["queries"]) == 260
    assert mismatches == []
