#!/usr/bin/env python3
"""Embeds a file of texts (one JSON string a line) with a Python peer of mneme's embedder and
prints the rate; optionally writes the vectors (f32, row after row) for accuracy comparisons.

    peers.py ENGINE MODEL_DIR TEXTS.jsonl [--threads 2] [--out VECTORS.f32] [--work DIR]

ENGINE: torch (sentence-transformers on torch, f32), ort-f32 (ONNX Runtime on the model
exported to ONNX), ort-int8 (the same after onnxruntime.quantization.quantize_dynamic with its
defaults: int8 weights, dynamic int8 activations, what a Python user would do). ONNX models are
exported once into --work. Every engine sorts by length and runs batches of 32 (as
sentence-transformers does), pads to the batch's longest text, and mean-pools and normalises.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def load_texts(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def export_onnx(model_dir, work):
    import torch
    from sentence_transformers import SentenceTransformer
    f32 = os.path.join(work, "model-f32.onnx")
    int8 = os.path.join(work, "model-int8.onnx")
    if not os.path.exists(f32):
        st = SentenceTransformer(model_dir, device="cpu")
        bert = st[0].auto_model.eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        mask = torch.ones((2, 16), dtype=torch.long)

        class Wrapped(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        torch.onnx.export(
            Wrapped(bert), (ids, mask), f32, input_names=["input_ids", "attention_mask"],
            output_names=["hidden"], opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                          "hidden": {0: "b", 1: "t"}},
        )
    if not os.path.exists(int8):
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(f32, int8, weight_type=QuantType.QInt8)
    return f32, int8


def ort_encoder(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(ids, mask):
        return sess.run(["hidden"], {"input_ids": ids, "attention_mask": mask})[0]
    return run


def embed_ort(run, tokenizer, texts, max_len):
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for s in range(0, len(texts), 32):
        idx = order[s:s + 32]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_len, return_tensors="np")
        ids = enc["input_ids"].astype(np.int64)
        mask = enc["attention_mask"].astype(np.int64)
        hidden = run(ids, mask)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        out[idx] = pooled
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["torch", "ort-f32", "ort-int8"])
    ap.add_argument("model")
    ap.add_argument("texts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--work", default="target/bench-embed")
    args = ap.parse_args()
    texts = load_texts(args.texts)
    import torch
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(args.model, device="cpu")
    if args.engine == "torch":
        st.encode(texts[:8], batch_size=32)
        started = time.perf_counter()
        vectors = st.encode(texts, batch_size=32, convert_to_numpy=True)
        secs = time.perf_counter() - started
    else:
        os.makedirs(args.work, exist_ok=True)
        f32, int8 = export_onnx(args.model, args.work)
        run = ort_encoder(f32 if args.engine == "ort-f32" else int8, args.threads)
        embed_ort(run, st.tokenizer, texts[:8], st.max_seq_length)
        started = time.perf_counter()
        vectors = embed_ort(run, st.tokenizer, texts, st.max_seq_length)
        secs = time.perf_counter() - started
    if args.out:
        np.asarray(vectors, dtype=np.float32).tofile(args.out)
    print(json.dumps({"engine": args.engine, "texts": len(texts), "seconds": round(secs, 3),
                      "per_second": round(len(texts) / secs, 2)}))


if __name__ == "__main__":
    main()
