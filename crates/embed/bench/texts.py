#!/usr/bin/env python3
"""Writes the texts the embedding benchmarks run on, one JSON string a line.

    texts.py man OUT.jsonl [N]        N passages of real manual pages (default 512)
    texts.py synthetic OUT.jsonl [N]  N chunks of 160 words from examples/throughput.rs's
                                      26-word vocabulary (default 256)

Manual pages: section-1 pages of this machine (the Google Cloud SDK's near-identical ones left
out), evenly spaced in name order, rendered with groff as scripts/eval-retrieval does, cut into
pieces of at most 1,000 characters at whitespace (mneme's default chunk size), pieces of fewer
than 200 characters dropped. The same passages on every run on the same machine.
"""
import gzip
import json
import random
import re
import subprocess
import sys
from pathlib import Path

VOCAB = ("search index vector embedding query latency cache document chunk model throughput the "
         "of and retrieval ranking hybrid keyword pattern sequence prediction memory session "
         "learn symbol engine").split()


def man_passages(n):
    pages = sorted(p for p in Path("/usr/share/man/man1").glob("*.1.gz")
                   if not p.name.startswith("gcloud"))
    out = []
    step = max(1, len(pages) // max(1, n // 4))
    for path in pages[::step]:
        try:
            source = gzip.open(path).read()
        except OSError:
            continue
        if source.startswith(b".so "):
            continue
        text = subprocess.run(
            ["groff", "-man", "-Tutf8", "-P-c", "-P-b", "-P-u", "-rLL=100n"],
            input=source, capture_output=True, timeout=30,
        ).stdout.decode("utf-8", "replace")
        text = re.sub(r"[ \t]+", " ", text)
        while text and len(out) < n:
            piece = text[:1000]
            if len(text) > 1000:
                cut = max(piece.rfind("\n\n"), piece.rfind(" "))
                piece = piece[:cut] if cut > 500 else piece
            text = text[len(piece):]
            if len(piece.strip()) >= 200:
                out.append(piece.strip())
            if len(out) % 4 == 0 and len(out) > 0 and len(text) < 1000:
                break
        if len(out) >= n:
            break
    return out


def synthetic(n):
    rng = random.Random(1)
    return [" ".join(rng.choice(VOCAB) for _ in range(160)) for _ in range(n)]


def main():
    kind, out = sys.argv[1], sys.argv[2]
    texts = man_passages(int(sys.argv[3]) if len(sys.argv) > 3 else 512) if kind == "man" \
        else synthetic(int(sys.argv[3]) if len(sys.argv) > 3 else 256)
    with open(out, "w") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print(f"{len(texts)} texts, {sum(map(len, texts)) / len(texts):.0f} characters each",
          file=sys.stderr)


if __name__ == "__main__":
    main()
