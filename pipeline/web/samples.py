"""Synthesized files under the data folder, listed and read a page at a time, and never a file outside it.

Every path a request names is resolved (symlinks followed) and must land inside the data folder;
`../`, absolute paths and links pointing out are refused (`OutsideDataFolder`). The folders the
store and the caches keep there (the FalkorDB files, the LLM cache, the dedup index, the model
server) are not listed.

    >>> sample_files(Path(".personagraph"))
    [SampleFile(path='math.jsonl', format='jsonl', rows=100, size_bytes=81234)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from personagraph.web.models import SampleFile, SamplePage, jsonable

FORMATS: dict[str, Literal["jsonl", "parquet"]] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# What the data folder holds besides outputs: the store (graph.server), the LLM cache and model server
# (pipeline.llm), the dedup index (pipeline.dedup.index).
NOT_SAMPLES = frozenset({"appendonly", "llm_cache", "llm_server", "dedup"})
# JSONL files up to this size are counted when listed; larger ones say "unknown" until opened.
COUNT_LIMIT_BYTES = 64 * 2**20
MAX_PAGE = 1000


class OutsideDataFolder(PermissionError):
    """A path that leads outside the data folder."""


class NotASampleFile(ValueError):
    """A file that is not JSONL or Parquet."""


def inside(data_dir: Path, relative: str) -> Path:
    """The file `relative` names in `data_dir`, after symlinks; OutsideDataFolder when it leads elsewhere."""
    root = data_dir.resolve()
    if not relative or "\x00" in relative or os.path.isabs(relative):
        raise OutsideDataFolder(f"{relative!r} is not a path inside the data folder")
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise OutsideDataFolder(f"{relative!r} is not a path inside the data folder")
    return path


def file_format(path: Path) -> Literal["jsonl", "parquet"]:
    """`jsonl` or `parquet` by suffix; NotASampleFile otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise NotASampleFile(f"{path.name}: not a .jsonl or .parquet file")
    return fmt


def _walk(root: Path) -> Iterator[Path]:
    """Files under `root`, not following links out of it, skipping hidden and store folders."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here == root and d in NOT_SAMPLES))
        for name in sorted(files):
            if not name.startswith("."):
                yield here / name


@lru_cache(maxsize=256)
def _jsonl_lines(path: str, size: int, mtime_ns: int) -> int:
    """Non-blank lines of a JSONL file, cached by size and modification time."""
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            count += bool(line.strip())
    return count


def count_rows(path: Path, fmt: str, *, always: bool = False) -> int | None:
    """Rows in a samples file: Parquet's footer says; JSONL lines are counted (when small, or `always`)."""
    stat = path.stat()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if not always and stat.st_size > COUNT_LIMIT_BYTES:
        return None
    return _jsonl_lines(str(path), stat.st_size, stat.st_mtime_ns)


def sample_files(data_dir: Path) -> list[SampleFile]:
    """The JSONL and Parquet files under the data folder (links that lead outside it left out)."""
    root = data_dir.resolve()
    out: list[SampleFile] = []
    for path in _walk(root):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            continue
        try:
            real = inside(root, str(path.relative_to(root)))
            if not real.is_file():
                continue
            rows = count_rows(real, fmt)
        except (OutsideDataFolder, OSError, ValueError):
            continue  # a link out, or a file that cannot be read: not offered
        out.append(SampleFile(path=path.relative_to(root).as_posix(), format=fmt, rows=rows, size_bytes=real.stat().st_size))
    return out


def _jsonl_page(path: Path, offset: int, limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    index = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if index >= offset + limit:
                break
            if index >= offset:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    errors.append(f"line {number}: malformed JSON: {exc.msg}")
                    row = {"_line": number, "_error": "malformed JSON"}
                if not isinstance(row, dict):
                    row = {"_line": number, "_value": row}
                rows.append(row)
            index += 1
    return rows, errors


def _parquet_page(path: Path, offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows of a Parquet file, reading only the row groups the page falls in."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    groups: list[int] = []
    first = start = 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if start + n > offset and start < offset + limit:
            if not groups:
                first = start
            groups.append(g)
        start += n
    if not groups:
        return []
    table: pa.Table = pf.read_row_groups(groups)
    return table.slice(offset - first, limit).to_pylist()


def read_page(data_dir: Path, relative: str, offset: int = 0, limit: int = 50) -> SamplePage:
    """Rows `offset` .. `offset + limit` of a samples file inside the data folder, as written.

    Raises OutsideDataFolder, NotASampleFile, FileNotFoundError.
    """
    path = inside(data_dir, relative)
    fmt = file_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {relative!r} in the data folder")
    limit = max(0, min(limit, MAX_PAGE))
    offset = max(0, offset)
    errors: list[str] = []
    if fmt == "parquet":
        rows = _parquet_page(path, offset, limit)
    else:
        rows, errors = _jsonl_page(path, offset, limit)
    return SamplePage(file=relative, format=fmt, total=count_rows(path, fmt, always=True), offset=offset,
                      rows=[jsonable(r) for r in rows], errors=errors)

