"""Streaming readers for JSONL, Parquet, CSV and folders of .txt/.md files.

Every reader yields `Record`s one at a time (never the whole file) with the file and line (or row)
they came from, and turns a bad line into a `Record` with an `error` instead of raising, so one
malformed line costs that line only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# Field names tried, in order, when the user does not name one.
PERSONA_FIELDS = ("persona", "description", "persona_description", "text", "input persona", "content")
TEXT_FIELDS = ("text", "content", "body", "article", "document", "passage", "markdown")


class Record(BaseModel):
    """One input record: its location, its fields, or why it could not be read."""

    path: str
    line: int
    data: dict[str, Any] = {}
    error: str | None = None

    @property
    def where(self) -> str:
        """`file:line` for messages."""
        return f"{self.path}:{self.line}"


class InputError(ValueError):
    """The input as a whole cannot be read (missing file, unknown format, no usable field)."""


def _jsonl(path: Path) -> Iterator[Record]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Record(path=str(path), line=n, error=f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})")
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Record(path=str(path), line=n, error=f"malformed JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(obj, dict):
                yield Record(path=str(path), line=n, error=f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield Record(path=str(path), line=n, data=obj)


def _csv(path: Path) -> Iterator[Record]:
    with open(path, "rb") as raw:
        wrapper = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
        reader = csv.DictReader(wrapper)
        row_no = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                yield Record(path=str(path), line=reader.line_num + 1, error=f"not valid UTF-8: {exc.reason}")
                return  # the decoder cannot resynchronise inside a CSV stream
            except csv.Error as exc:
                yield Record(path=str(path), line=reader.line_num, error=f"malformed CSV: {exc}")
                continue
            row_no += 1
            if None in row:
                yield Record(path=str(path), line=reader.line_num, error="row has more fields than the header")
                continue
            yield Record(path=str(path), line=reader.line_num, data=dict(row))


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            yield Record(path=str(path), line=row, data=obj)


def _folder(path: Path) -> Iterator[Record]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    for f in files:
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Record(path=str(f), line=1, error=f"not valid UTF-8 (byte {exc.start})")
            continue
        yield Record(path=str(f), line=1, data={"text": text, "uri": str(f)})


def iter_records(path: Path) -> Iterator[Record]:
    """Stream the records of a JSONL / Parquet / CSV file, or the .txt/.md files of a folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _folder(path)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return _jsonl(path)
    if suffix == ".csv":
        return _csv(path)
    if suffix in (".parquet", ".pq"):
        return _parquet(path)
    if suffix in TEXT_SUFFIXES:
        return _folder_file(path)
    raise InputError(f"{path}: unknown format {suffix!r}; use .jsonl, .parquet, .csv, .txt/.md or a folder")


def _folder_file(path: Path) -> Iterator[Record]:
    raw = path.read_bytes()
    try:
        yield Record(path=str(path), line=1, data={"text": raw.decode("utf-8"), "uri": str(path)})
    except UnicodeDecodeError as exc:
        yield Record(path=str(path), line=1, error=f"not valid UTF-8 (byte {exc.start})")


def detect_field(path: Path, candidates: tuple[str, ...], sample: int = 50) -> str:
    """The text field of a file: the first candidate present in its first records, else the only
    string field, else an InputError listing the fields found."""
    seen: dict[str, int] = {}
    for i, rec in enumerate(iter_records(path)):
        if i >= sample:
            break
        for key, value in rec.data.items():
            if isinstance(value, str):
                seen[key] = seen.get(key, 0) + 1
    lowered = {k.lower(): k for k in seen}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    if len(seen) == 1:
        return next(iter(seen))
    if not seen:
        raise InputError(f"{path}: no text fields found in the first {sample} records")
    raise InputError(
        f"{path}: cannot tell which field holds the text; fields found: {sorted(seen)}. Name one with --field"
    )
