#!/usr/bin/env python3
"""sentence-transformers' throughput on texts like those of examples/throughput.rs (the same
26-word vocabulary, 160 words each, batch 32, 2 threads), for comparison.

    python3 crates/embed/bench/torch_throughput.py .mneme/models/all-MiniLM-L6-v2 [N]

Needs a venv with `pip install sentence-transformers` (brings torch).
"""
import random
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

torch.set_num_threads(2)
VOCAB = ("search index vector embedding query latency cache document chunk model throughput the "
         "of and retrieval ranking hybrid keyword pattern sequence prediction memory session "
         "learn symbol engine").split()
random.seed(1)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
texts = [" ".join(random.choice(VOCAB) for _ in range(160)) for _ in range(n)]
model = SentenceTransformer(sys.argv[1], device="cpu")
model.encode(texts[:4])
started = time.time()
model.encode(texts, batch_size=32)
print(f"sentence-transformers: {n / (time.time() - started):.1f} chunks/s")
