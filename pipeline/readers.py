"""Streaming readers for JSONL, Parquet, CSV and folders of .txt/.md files, plain or compressed.

Every reader yields `Record`s one at a time (never the whole file) with the file and line (or row)
they came from, and turns a bad line into a `Record` with an `error` instead of raising, so one
malformed line costs that line only. A file compressed with gzip or zstd (`personas.jsonl.gz`,
`texts.jsonl.zst`) is decompressed as it streams; its format is the suffix inside (`.jsonl`).
A file that is not text at all (an archive, an image, UTF-16 without a byte-order mark) is refused
up front with what it looks like; UTF-8 with a byte-order mark and UTF-16 with one are read.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")
# Field names tried, in order, when the user does not name one.
PERSONA_FIELDS = ("persona", "description", "persona_description", "text", "input persona", "content")
TEXT_FIELDS = ("text", "content", "body", "article", "document", "passage", "markdown")

_UTF8_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SNIFF_BYTES = 8192
CSV_FIELD_LIMIT = 16 << 20  # characters in one CSV field
# What a file that is not text looks like at its start, for the message that refuses it.
_NOT_TEXT = (
    (b"PK\x03\x04", "a ZIP archive (or .xlsx / .docx)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "Parquet data (name it .parquet)"),
    (b"BZh", "bzip2-compressed data (recompress it as .gz or .zst)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (recompress it as .gz or .zst)"),
    (b"\xff\xfe\x00\x00", "UTF-32 text (convert it to UTF-8)"),
    (b"\x00\x00\xfe\xff", "UTF-32 text (convert it to UTF-8)"),
)
# Bytes that do not occur in text (tab, newlines, form feed and escape do).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


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


def input_format(path: Path) -> str:
    """The format suffix of a file name, inside any compression suffix: 'personas.jsonl.gz' -> '.jsonl'."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


@contextlib.contextmanager
def open_input(path: Path) -> Iterator[IO[bytes]]:
    """The bytes of `path`, decompressed as they are read when the file is gzip or zstd (by its magic
    bytes, whatever its name says)."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw) as fh:
                yield fh
        elif magic == _ZSTD_MAGIC:
            try:
                import zstandard
            except ImportError:  # a dependency; only a broken install lacks it
                raise InputError(f"{path}: zstd-compressed, and the `zstandard` package is missing: pip install zstandard") from None
            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as reader:
                yield io.BufferedReader(reader)  # type: ignore[arg-type]
        else:
            yield raw


def _corrupt(path: Path, exc: Exception) -> str:
    """Why a compressed stream stopped mid-way, for the record that ends the file."""
    return f"compressed data is corrupt or truncated ({type(exc).__name__}: {exc}); the rest of {path.name} is not read"


@functools.cache
def _decompression_errors() -> tuple[type[Exception], ...]:
    """What reading a damaged gzip or zstd stream raises."""
    errors: tuple[type[Exception], ...] = (EOFError, OSError)  # gzip.BadGzipFile is an OSError
    with contextlib.suppress(ImportError):
        import zstandard

        errors += (zstandard.ZstdError,)
    return errors


def sniff_encoding(head: bytes, path: Path) -> str:
    """The text encoding of a file from its first bytes: 'utf-8' (a byte-order mark allowed) or 'utf-16'
    (with one); InputError naming what the file is when it is not text."""
    if not head:
        raise InputError(f"{path}: the file is empty")
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            raise InputError(f"{path}: not a text file: it looks like {what}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 50:
            endian = "LE" if odd > even else "BE"
            raise InputError(f"{path}: not UTF-8: it looks like UTF-16 ({endian}) without a byte-order mark; "
                             f"convert it with `iconv -f UTF-16{endian} -t UTF-8`")
    if sum(head.count(b) for b in _CONTROL) > len(head) // 20:
        raise InputError(f"{path}: not a text file: binary data (control bytes at its start)")
    return "utf-8"


def _numbered_lines(fh: IO[bytes], encoding: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each physical line, ending included; a UTF-8 line that does not
    decode costs that line only. A UTF-8 byte-order mark is dropped."""
    if encoding == "utf-16":
        text = io.TextIOWrapper(fh, encoding="utf-16", newline="")
        n = 0
        try:
            for n, line in enumerate(text, start=1):
                yield n, line, None
        except UnicodeDecodeError as exc:
            yield n + 1, None, f"not valid UTF-16: {exc.reason}; the rest of the file is not read"
        return
    for n, raw in enumerate(fh, start=1):
        if n == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[3:]
        try:
            yield n, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield n, None, f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})"


def _jsonl(path: Path, encoding: str) -> Iterator[Record]:
    where = str(path)
    with open_input(path) as fh:
        # UTF-8 (by far the usual) is decoded line by line, so a bad line costs itself only.
        lines: Iterable[bytes | str] = io.TextIOWrapper(fh, encoding="utf-16", newline="") if encoding == "utf-16" else fh
        n = 0
        try:
            for n, line in enumerate(lines, start=1):
                if type(line) is bytes:
                    if n == 1 and line.startswith(_UTF8_BOM):
                        line = line[3:]
                    if not line.strip():
                        continue
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        yield Record(path=where, line=n, error=f"not valid UTF-8 (byte {exc.start}: {line[exc.start:exc.start + 1]!r})")
                        continue
                else:
                    text = line  # type: ignore[assignment]
                    if not text.strip():
                        continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield Record(path=where, line=n, error=f"malformed JSON: {exc.msg} at column {exc.colno}")
                    continue
                if not isinstance(obj, dict):
                    yield Record(path=where, line=n, error=f"expected a JSON object, got {type(obj).__name__}")
                    continue
                yield Record(path=where, line=n, data=obj)
        except UnicodeDecodeError as exc:  # UTF-16: the decoder cannot resynchronise
            yield Record(path=where, line=n + 1, error=f"not valid UTF-16: {exc.reason}; the rest of the file is not read")
        except _decompression_errors() as exc:
            yield Record(path=where, line=n + 1, error=_corrupt(path, exc))


class _Undecodable(Exception):
    """A line of a CSV file that is not text in the file's encoding (raised through csv.reader)."""


class _LineFeed:
    """The physical lines of a CSV file for `csv.reader`, numbered, with the lines of the record being
    parsed kept so they can be put back: after a quoted field that ran over the lines after it (an
    unterminated quote), those lines are read again as rows of their own."""

    def __init__(self, lines: Iterator[tuple[int, str | None, str | None]]) -> None:
        self._lines = lines
        self._back: list[tuple[int, str]] = []  # a stack: the next line to read is last
        self.taken: list[tuple[int, str]] = []
        self.last = 0  # number of the last line read from the file
        self.bad: tuple[int, str] = (0, "")

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self._back:
            n, text = self._back.pop()
        else:
            n, maybe, error = next(self._lines)
            self.last = n
            if maybe is None:
                self.bad = (n, error or "undecodable")
                raise _Undecodable
            text = maybe
        self.taken.append((n, text))
        return text

    def put_back(self, lines: list[tuple[int, str]]) -> None:
        """Read `lines` again, in order, before any new line."""
        self._back.extend(reversed(lines))


def _csv(path: Path, encoding: str) -> Iterator[Record]:
    """Rows as dicts keyed by the header. Parsed strictly: a quote that is never closed (or closed
    mid-field) costs the line it opened on, not the rows it would have swallowed."""
    where = str(path)
    # Python's default (128 KiB) cuts a long quoted text short, and what follows would be read as rows;
    # the limit also bounds what an unterminated quote can swallow before it is caught.
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with open_input(path) as fh:
        feed = _LineFeed(_numbered_lines(fh, encoding))
        reader = csv.reader(feed, strict=True)
        header: list[str] | None = None
        while True:
            feed.taken.clear()
            try:
                row = next(reader)
            except StopIteration:
                return
            except _Undecodable:
                n, error = feed.bad
                if len(feed.taken) > 1:  # the record in progress is cut: read its other lines again
                    feed.put_back(feed.taken[1:])
                yield Record(path=where, line=feed.taken[0][0] if feed.taken else n, error=error)
                continue
            except csv.Error as exc:
                first, last = feed.taken[0][0], feed.taken[-1][0]
                detail = f"malformed CSV: {exc}"
                if last > first:
                    detail += (f" (a quoted field opened on this line ran on to line {last}; lines {first + 1}-{last} "
                               "are read again as rows of their own)")
                    feed.put_back(feed.taken[1:])
                yield Record(path=where, line=first, error=detail)
                continue
            except _decompression_errors() as exc:
                yield Record(path=where, line=feed.taken[0][0] if feed.taken else feed.last + 1, error=_corrupt(path, exc))
                return
            if not row:
                continue
            line = feed.taken[0][0]
            if header is None:
                header = row
                continue
            if len(row) > len(header):
                yield Record(path=where, line=line, error=f"row has more fields than the header ({len(row)} > {len(header)})")
                continue
            yield Record(path=where, line=line, data=dict(zip(header, [*row, *[None] * (len(header) - len(row))])))


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    with contextlib.ExitStack() as stack:
        source: Any = path
        if input_format(path) != path.suffix.lower():
            # Parquet is read by seeking, which a compressed stream cannot do: decompress to a temporary file.
            source = stack.enter_context(tempfile.TemporaryFile())
            with open_input(path) as fh:
                shutil.copyfileobj(fh, source)
            source.seek(0)
        try:
            pf = pq.ParquetFile(source)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        row = 0
        for batch in pf.iter_batches(batch_size=4096):
            for obj in batch.to_pylist():
                row += 1
                yield Record(path=str(path), line=row, data=obj)


def _text_file(path: Path) -> Record:
    """A .txt/.md file (compressed or not) as one record with its text and uri."""
    try:
        with open_input(path) as fh:
            raw = fh.read()
    except _decompression_errors() as exc:
        return Record(path=str(path), line=1, error=_corrupt(path, exc))
    try:
        encoding = sniff_encoding(raw[:_SNIFF_BYTES], path)
    except InputError as exc:
        return Record(path=str(path), line=1, error=str(exc).removeprefix(f"{path}: "))
    if raw.startswith(_UTF8_BOM):
        raw = raw[3:]
    try:
        return Record(path=str(path), line=1, data={"text": raw.decode(encoding), "uri": str(path)})
    except UnicodeDecodeError as exc:
        return Record(path=str(path), line=1, error=f"not valid {encoding.upper()} (byte {exc.start})")


def _folder(path: Path) -> Iterator[Record]:
    for f in folder_files(path):
        yield _text_file(f)


def folder_files(path: Path) -> list[Path]:
    """The .txt/.md files (plain or compressed) under a folder, sorted."""
    return sorted(p for p in Path(path).rglob("*") if p.is_file() and input_format(p) in TEXT_SUFFIXES)


def iter_records(path: Path) -> Iterator[Record]:
    """Stream the records of a JSONL / Parquet / CSV file, or the .txt/.md files of a folder, each of
    them plain or compressed (.gz, .zst); InputError when the file as a whole cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _folder(path)
    suffix = input_format(path)
    if suffix in PARQUET_SUFFIXES:
        return _parquet(path)
    if suffix not in (*JSONL_SUFFIXES, ".csv", *TEXT_SUFFIXES):
        raise InputError(f"{path}: unknown format {suffix!r}; use .jsonl, .parquet, .csv, .txt/.md (each may be "
                         ".gz or .zst compressed) or a folder")
    if suffix in TEXT_SUFFIXES:
        return iter([_text_file(path)])
    try:
        with open_input(path) as fh:
            head = fh.read(_SNIFF_BYTES)
    except _decompression_errors() as exc:
        raise InputError(f"{path}: {_corrupt(path, exc)}") from None
    encoding = sniff_encoding(head, path)
    return _jsonl(path, encoding) if suffix in JSONL_SUFFIXES else _csv(path, encoding)


def count_records(path: Path) -> int | None:
    """A quick count of the records in `path` for a progress bar: lines, rows or files; None if unknown
    (a compressed file is not decompressed twice to count it)."""
    path = Path(path)
    if path.is_dir():
        return len(folder_files(path))
    suffix = input_format(path)
    compressed = suffix != path.suffix.lower()
    if suffix in PARQUET_SUFFIXES and not compressed:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if suffix in (*JSONL_SUFFIXES, ".csv") and not compressed:
        with open(path, "rb") as fh:
            lines = sum(1 for line in fh if line.strip())
        return lines - 1 if suffix == ".csv" else lines
    if suffix in TEXT_SUFFIXES and path.is_file():
        return 1
    return None


def _survey(path: Path, sample: int) -> tuple[int, Counter[str], Counter[str], Record | None]:
    """Of the first `sample` records: how many there are, the string-valued fields and all fields
    (with counts), and the first unreadable record."""
    read = 0
    text_fields: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    first_error: Record | None = None
    for rec in iter_records(path):
        if read >= sample:
            break
        read += 1
        if rec.error and first_error is None:
            first_error = rec
        for key, value in rec.data.items():
            fields[key] += 1
            if isinstance(value, str):
                text_fields[key] += 1
    return read, text_fields, fields, first_error


def choose_field(path: Path, candidates: tuple[str, ...], field: str | None = None, sample: int = 200) -> str:
    """The field of `path` that holds the text: `field` if given and present in its first records,
    else the first of `candidates` that is; InputError listing the fields found otherwise (a file of
    names or ids is not imported as personas by guesswork)."""
    read, text_fields, fields, first_error = _survey(Path(path), sample)
    if read == 0:
        raise InputError(f"{path}: no records in it (the file is empty)")
    if not fields:
        reason = f"; {first_error.where}: {first_error.error}" if first_error else ""
        raise InputError(f"{path}: none of its first {read} records could be read{reason}")
    found = ", ".join(repr(k) for k in sorted(fields))
    if field is not None:
        if field in fields:
            return field
        close = [k for k in fields if k.lower() == field.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"{path}: no field {field!r} in its first {read} records{hint}; fields found: {found}")
    lowered = {k.lower(): k for k in text_fields}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    looked_for = ", ".join(repr(c) for c in candidates)
    raise InputError(f"{path}: no field named like the text ({looked_for}) in its first {read} records; "
                     f"fields found: {found}. Name the one to read with --field")
