"""docs/python.md runs as written: every ```python block in order, in one namespace, as a notebook would,
against the whole-method test endpoint (set the way a user sets theirs: OPENAI_BASE_URL)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from personagraph.graph import server
from tests.method_fake import MethodFake

ROOT = Path(__file__).resolve().parent.parent
PYTHON_MD = ROOT / "docs" / "python.md"


def code_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture
def user_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clone-like working folder (the docs read docs/examples/), with the test endpoint configured."""
    folder = Path(tempfile.mkdtemp(prefix="pgdoc-", dir="/tmp"))  # short: the store's unix socket lives in it
    shutil.copytree(ROOT / "docs" / "examples", folder / "docs" / "examples")
    fake = MethodFake().start()
    monkeypatch.chdir(folder)
    for name, value in {"OPENAI_BASE_URL": fake.base_url, "OPENAI_MODEL": "fake-model",
                        "PERSONAGRAPH_CONFIG": str(folder / "personagraph.toml")}.items():
        monkeypatch.setenv(name, value)
    try:
        yield folder
    finally:
        fake.stop()
        server.stop(folder / ".personagraph")
        shutil.rmtree(folder, ignore_errors=True)


def test_docs_python_md_runs_as_written(user_folder: Path) -> None:
    blocks = code_blocks(PYTHON_MD)
    assert len(blocks) >= 12
    namespace: dict[str, object] = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for number, block in enumerate(blocks, 1):
            try:
                exec(compile(block, f"docs/python.md block {number}", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise AssertionError(f"docs/python.md block {number} failed: {exc!r}\n{block}") from exc
    out = printed.getvalue()
    assert "3 imported, 0 already there" in out
    assert "8 texts, 8 personas" in out
    assert (user_folder / "math.jsonl").exists() and (user_folder / "out" / "personas.jsonl").exists()
    assert list((user_folder / "clusters").glob("*.json"))
    assert re.search(r"^\d+ relationships$", out, re.M)
    assert os.environ["OPENAI_BASE_URL"].startswith("http://127.0.0.1")
