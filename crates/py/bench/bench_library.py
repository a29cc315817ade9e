#!/usr/bin/env python3
"""KnowledgeBeast's library figures for mneme's Python package, on gen_corpus.py's corpus:
ingest, uncached and cached keyword query latency, sequential and threaded throughput.

    python bench_library.py CORPUS_DIR [--rounds 3] [--threads 1,4,10] [--pool-for-one]

CORPUS_DIR is gen_corpus.py's OUT (knowledge/ and queries.json). Prints one JSON document.
Run with the venv of scripts/test-python (the installed wheel).
"""
import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from knowledgebeast import KnowledgeBase, KnowledgeBeastConfig


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latencies(kb, queries, use_cache):
    out = []
    for q in queries:
        t = time.perf_counter()
        kb.query(q, use_cache=use_cache, mode="keyword")
        out.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": pct(out, 50), "p95_ms": pct(out, 95), "p99_ms": pct(out, 99)}


def throughput(kb, queries, threads, repeat, pool_for_one=False):
    work = queries * repeat
    t = time.perf_counter()
    if threads == 1 and not pool_for_one:
        for q in work:
            kb.query(q, use_cache=False, mode="keyword")
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda q: kb.query(q, use_cache=False, mode="keyword"), work))
    return len(work) / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,4,10")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pool-for-one", action="store_true",
                    help="run the 1-thread figure through a ThreadPoolExecutor too (not a plain loop), "
                         "so that the thread ratios exclude the executor's own cost")
    args = ap.parse_args()
    queries = json.loads((args.corpus / "queries.json").read_text())
    keyword, natural = queries["keyword"], queries["natural"]
    threads = [int(t) for t in args.threads.split(",")]
    report = {"cpus": os.cpu_count(), "rounds": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as data:
            config = KnowledgeBeastConfig(knowledge_dirs=[args.corpus / "knowledge"], auto_warm=False, data_dir=data,
                                          max_cache_size=1000)
            kb = KnowledgeBase(config, enable_vector=False)
            t = time.perf_counter()
            docs = kb.ingest_all()
            ingest_s = time.perf_counter() - t
            kb.query(keyword[0], use_cache=False, mode="keyword")  # first touch
            r = {
                "documents": docs,
                "ingest_s": ingest_s,
                "uncached_keyword": latencies(kb, keyword, False),
                "uncached_natural": latencies(kb, natural, False),
            }
            latencies(kb, keyword, True)
            r["cached_keyword"] = latencies(kb, keyword, True)
            r["qps_uncached_keyword"] = {str(n): throughput(kb, keyword, n, args.repeat, args.pool_for_one)
                                         for n in threads}
            kb.close()
            report["rounds"].append(r)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
