"""Embedding throughput and agreement: sentence-transformers (torch) vs the ONNX encoder, fp32 and int8.

    python -m bench.bench_embed --n 2000 --rounds 3      # needs sentence-transformers: pip install -e '.[torch]'

All three encode the same real Persona Hub personas (tests/fixtures/filter/real_personas.jsonl) in
one process, on the CPU, at the project's batch size, in interleaved rounds; the best round of each
is reported (other work on the machine only ever slows a round down), with the median beside it.
Agreement is the cosine per text between the backends' unit vectors. "onnx int8" is the shipped
int8 encoder (`embedding_precision = "int8"`: dense layers in int8 around float32 outlier
channels); "plain int8" is ONNX Runtime's dynamic quantisation of every dense layer (per channel)
in a session set up as the shipped ones are (`runtime_session`), built here only to be measured:
it moves some texts below cosine 0.99 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from personagraph.dedup.embedding import (
    OnnxEncoder,
    TorchEncoder,
    model_path,
    runtime_session,
)

PERSONAS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "filter" / "real_personas.jsonl"


def persona_texts(n: int) -> list[str]:
    """`n` real personas, repeated from the start if the fixture holds fewer."""
    with PERSONAS.open() as f:
        personas = [json.loads(line)["persona"] for line in f]
    return [personas[i % len(personas)] for i in range(n)]


def plain_int8_encoder(fp32: OnnxEncoder, folder: Path) -> OnnxEncoder:
    """The fp32 encoder's graph with all its dense layers quantised to int8 (dynamic, per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = folder / "int8.onnx"
    quantize_dynamic(fp32.path, path, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
    encoder = OnnxEncoder(model_path(), "fp32")
    encoder.path = path
    return one_session(encoder)


def one_session(encoder: OnnxEncoder) -> OnnxEncoder:
    """`encoder` on one session with a thread per core, as before it ran a 1-thread session per core."""
    encoder.sessions = [runtime_session(encoder.path)]
    encoder._pool = None
    return encoder


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    cosine = (a * b).sum(axis=1)
    return f"min {cosine.min():.5f}  mean {cosine.mean():.5f}  below 0.99: {int((cosine < 0.99).sum())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="personas to encode per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the project's [dedup] embed_batch_size")
    args = parser.parse_args()

    import torch

    texts = persona_texts(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = OnnxEncoder(model_path(), "fp32")
        encoders = {
            "sentence-transformers": TorchEncoder(model_path()),
            "onnx fp32": fp32,
            "onnx int8 (shipped)": OnnxEncoder(model_path(), "int8"),
            "onnx int8, one session": one_session(OnnxEncoder(model_path(), "int8")),
            "plain int8": plain_int8_encoder(fp32, Path(tmp)),
        }
        load = os.getloadavg()[0]
        for encoder in encoders.values():
            encoder.encode(texts[: args.batch_size], args.batch_size)
        seconds: dict[str, list[float]] = {name: [] for name in encoders}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, encoder in encoders.items():
                t0 = time.perf_counter()
                vectors[name] = encoder.encode(texts, args.batch_size)
                seconds[name].append(time.perf_counter() - t0)

    print(f"{args.n} personas, batch {args.batch_size}, {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} on {torch.get_num_threads()} threads, "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    base_best, base_median = min(seconds["sentence-transformers"]), float(np.median(seconds["sentence-transformers"]))
    for name, times in seconds.items():
        best, median = min(times), float(np.median(times))
        print(f"  {name:22s} {args.n / best:6.0f} texts/s ({base_best / best:4.2f}x)   "
              f"median {args.n / median:6.0f} texts/s ({base_median / median:4.2f}x)")
    reference = vectors["sentence-transformers"]
    print(f"  cosine onnx fp32 vs sentence-transformers: {agreement(vectors['onnx fp32'], reference)}")
    for name in ("onnx int8 (shipped)", "plain int8"):
        print(f"  cosine {name:20s} vs onnx fp32:            {agreement(vectors[name], vectors['onnx fp32'])}")
        print(f"  cosine {name:20s} vs sentence-transformers: {agreement(vectors[name], reference)}")


if __name__ == "__main__":
    main()
