"""Write tests/fixtures/embedding_reference.npz: sentence-transformers' vectors for varied texts.

tests/test_embedding.py checks the ONNX encoder against these vectors, so the default install (no
torch) is still tested against the reference implementation. Regenerate, with sentence-transformers
installed (`pip install -e '.[torch]'`), after changing the model package:

    python -m bench.make_embedding_reference
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from personagraph.dedup.embedding import TorchEncoder, model_path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "embedding_reference.npz"
REAL = ROOT / "tests" / "fixtures" / "filter" / "real_personas.jsonl"

# Far past the model's 256-token limit, so truncation is part of what is compared.
LONG = (
    "A logistics coordinator for a regional hospital network who plans the night-time transfer of "
    "blood products, vaccines and surgical kits between twelve sites, negotiates with courier "
    "companies, keeps spreadsheets of refrigerator temperatures, trains new dispatchers, and on "
    "weekends restores vintage motorcycles with her two teenage sons in a rented garage. "
) * 8

EDGE_CASES = [
    "",
    " ",
    "\n\t",
    ".",
    "Nurse.",
    "a",
    "一位在上海教初中数学的老师，喜欢带学生参加奥数比赛。",
    "一名退休的铁路工程师，住在成都，每天早上在公园里打太极拳，还在社区大学教老年人用智能手机。",
    "東京で小さなラーメン屋を営む三代目の店主。",
    "مهندسة برمجيات في القاهرة تعمل على تطبيقات التعليم عن بعد.",
    "Une infirmière pédiatrique à Lyon qui court des marathons et lit des romans policiers.",
    "A DATA ENGINEER WHO WRITES EVERYTHING IN CAPITAL LETTERS!!!",
    "A chef 🍳 who posts recipes on https://example.com/recipes?id=42 every Friday #foodie",
    "Pharmacist; 34 y/o; works 3x12h shifts; C++ hobbyist; owns 2 cats & 1 iguana.",
    LONG,
    LONG.replace("motorcycles", "sailboats"),
    "word " * 400,
]


def reference_texts(personas: int = 23) -> list[str]:
    """The fixture's texts: edge cases, then the first `personas` real Persona Hub personas."""
    with REAL.open() as f:
        real = [json.loads(line)["persona"] for line, _ in zip(f, range(personas))]
    return EDGE_CASES + real


def main() -> None:
    texts = reference_texts()
    vectors = TorchEncoder(model_path()).encode(texts, batch_size=16)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, texts=np.array(texts), vectors=vectors.astype(np.float32))
    print(f"{len(texts)} texts -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
