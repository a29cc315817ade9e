"""Fixtures for the Python package's tests (run by scripts/test-python, from scripts/test)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

DOCS = {
    "audio/librosa.md": "# Librosa\n\nAudio processing with librosa: fft, spectrograms and onset detection.\n",
    "audio/fft.md": "# FFT\n\nThe fft algorithm is the core of audio processing and signal processing.\n",
    "juce/plugins.md": "# JUCE plugins\n\nThe juce framework for plugin development and real-time audio.\n",
    "ml/intro.md": "# Machine learning\n\nMachine learning for audio: features, models, training.\n",
    "notes.md": "# Notes\n\nNothing about sound here, only video codecs.\n",
}


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A knowledge-base directory, with the working directory set to its parent (the
    doc_ids are relative to it), and a fresh mneme data directory."""
    root = tmp_path / "knowledge-base"
    for rel, text in DOCS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("KB_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("MNEME_DATA_DIR", str(tmp_path / ".mneme"))
    return root


def mneme_bin() -> str:
    path = os.environ.get("MNEME_BIN")
    if not path or not Path(path).is_file():
        raise RuntimeError("MNEME_BIN must name the mneme binary (scripts/test-python builds it)")
    return path


@pytest.fixture
def server(tmp_path):
    """`mneme serve` on a free loopback port with its own data directory; yields its URL."""
    data = tmp_path / "served"
    proc = subprocess.Popen(
        [mneme_bin(), "--data-dir", str(data), "serve", "--host", "127.0.0.1", "--port", "0", "--no-ingest"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            if proc.poll() is not None:
                raise RuntimeError(f"mneme serve exited: {proc.stderr.read().decode()}")
            try:
                url = json.loads((data / "serve.json").read_text())["url"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        if url is None:
            raise RuntimeError("mneme serve did not write serve.json within 60 s")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
