"""The input readers (pipeline/readers.py): every line accounted for, compressed files streamed, and a
file that is not what its name says refused with what it is."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from personagraph.readers import PERSONA_FIELDS, TEXT_FIELDS, InputError, choose_field, count_records, iter_records

ROWS = [{"persona": f"a ferry mechanic number {i} who fixes engines at night", "domain": "maritime"} for i in range(5)]


def jsonl_bytes(rows: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def csv_lines(n: int) -> list[str]:
    return ["persona,domain", *[f"a ferry mechanic number {i} who fixes engines,maritime" for i in range(1, n + 1)]]


def read(path: Path) -> list[tuple[int, str | None, str | None]]:
    """(line, persona, error) of every record."""
    return [(r.line, r.data.get("persona"), r.error) for r in iter_records(path)]


@pytest.mark.parametrize("name", ["personas.jsonl.gz", "personas.jsonl.zst", "personas.csv.gz", "personas.csv.zst",
                                  "personas.parquet.gz", "texts.txt.zst"])
def test_compressed_files_are_read_by_their_inner_suffix(tmp_path: Path, name: str) -> None:
    inner = name.rsplit(".", 1)[0]
    if inner.endswith(".jsonl"):
        data = jsonl_bytes(ROWS)
    elif inner.endswith(".csv"):
        data = ("persona,domain\n" + "".join(f"{r['persona']},{r['domain']}\n" for r in ROWS)).encode()
    elif inner.endswith(".parquet"):
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(ROWS), sink)
        data = sink.getvalue()
    else:
        data = ROWS[0]["persona"].encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else zstandard.ZstdCompressor().compress(data))
    records = list(iter_records(path))
    assert all(r.error is None for r in records)
    if inner.endswith(".txt"):
        assert records[0].data["text"] == ROWS[0]["persona"]
    else:
        assert [r.data["persona"] for r in records] == [r["persona"] for r in ROWS]
        assert records[0].data["domain"] == "maritime"
        assert choose_field(path, PERSONA_FIELDS) == "persona"


def test_zstd_is_streamed_across_frames_and_a_truncated_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    frames = tmp_path / "two_frames.jsonl.zst"
    frames.write_bytes(zstandard.ZstdCompressor().compress(jsonl_bytes(ROWS[:2]))
                       + zstandard.ZstdCompressor().compress(jsonl_bytes(ROWS[2:])))
    assert [p for _, p, _ in read(frames)] == [r["persona"] for r in ROWS]
    big = [{"persona": f"a lock keeper number {i} on the canal", "n": str(i) * 50} for i in range(5000)]
    truncated = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(jsonl_bytes(big))
    truncated.write_bytes(whole[: len(whole) // 2])
    records = list(iter_records(truncated))
    good, last = records[:-1], records[-1]
    assert good and all(r.error is None for r in good) and len(good) < 5000
    assert last.line == len(good) + 1 and "corrupt or truncated" in (last.error or "")


def test_a_utf8_byte_order_mark_keeps_the_first_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + jsonl_bytes(ROWS))
    assert [(n, p) for n, p, _ in read(jsonl)] == [(i + 1, r["persona"]) for i, r in enumerate(ROWS)]
    table = tmp_path / "bom.csv"
    table.write_bytes(b"\xef\xbb\xbf" + "\n".join(csv_lines(3)).encode() + b"\n")
    assert choose_field(table, PERSONA_FIELDS) == "persona"
    assert [n for n, _, _ in read(table)] == [2, 3, 4]


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    jsonl = tmp_path / "utf16.jsonl"
    jsonl.write_bytes(jsonl_bytes(ROWS).decode().encode("utf-16"))
    assert [p for _, p, _ in read(jsonl)] == [r["persona"] for r in ROWS]
    table = tmp_path / "utf16.csv"
    table.write_bytes("\n".join(csv_lines(2)).encode("utf-16"))
    assert [n for n, _, _ in read(table)] == [2, 3]


@pytest.mark.parametrize("content, what", [
    ("utf16-no-bom", r"UTF-16 \(LE\) without a byte-order mark"),
    ("zip", "a ZIP archive"),
    ("random", "not a text file: binary data"),
    ("empty", "the file is empty"),
])
def test_a_file_that_is_not_text_is_refused_with_what_it_is(tmp_path: Path, content: str, what: str) -> None:
    path = tmp_path / "input.jsonl"
    if content == "utf16-no-bom":
        path.write_bytes(jsonl_bytes(ROWS).decode().encode("utf-16-le"))
    elif content == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("personas.jsonl", jsonl_bytes(ROWS))
    elif content == "random":
        path.write_bytes(bytes(range(256)) * 40)
    else:
        path.write_bytes(b"")
    with pytest.raises(InputError, match=what) as info:
        choose_field(path, PERSONA_FIELDS)
    assert str(info.value).startswith(f"{path}: ")


def test_an_unterminated_csv_quote_costs_its_own_line_only(tmp_path: Path) -> None:
    lines = csv_lines(24)
    lines[5] = '"a quote that is never closed,maritime'  # line 6
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(lines) + "\n")
    records = list(iter_records(path))
    assert [r.line for r in records] == list(range(2, 26))
    bad = [r for r in records if r.error]
    assert [r.line for r in bad] == [6] and "ran on to line 25" in (bad[0].error or "")
    assert len([r for r in records if not r.error]) == 23


def test_a_quote_closed_rows_later_is_caught_too_and_multiline_fields_still_work(tmp_path: Path) -> None:
    lines = csv_lines(24)
    lines[5] = '"a quote that is never closed,maritime'  # line 6
    lines[15] = 'a mechanic who says "hi" to the ferry,maritime'  # line 16: its first quote would close line 6's field
    lines[20] = '"a legit field\nthat runs over two lines, quoted",maritime'  # lines 21-22
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(lines) + "\n")
    records = list(iter_records(path))
    assert [(r.line, r.error is not None) for r in records if r.error] == [(6, True)]
    assert [r.line for r in records] == [*range(2, 22), *range(23, 27)]  # one record per row, a row at its first line
    assert records[-5].data["persona"] == "a legit field\nthat runs over two lines, quoted"


def test_a_long_quoted_text_over_many_lines_is_one_record(tmp_path: Path) -> None:
    import csv

    text = "\n".join(f"paragraph {i}, " + "word " * 200 for i in range(300))  # 300 lines, 300k characters
    path = tmp_path / "long.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([["text", "n"], [text, "1"], ["a short one", "2"]])
    records = list(iter_records(path))
    assert [(r.line, r.error) for r in records] == [(2, None), (302, None)]
    assert records[0].data["text"] == text


def test_choose_field_refuses_to_guess_and_names_the_fields(tmp_path: Path) -> None:
    names = tmp_path / "names.parquet"
    pq.write_table(pa.table({"name": ["Ada", "Grace"], "age": [36, 45]}), names)
    with pytest.raises(InputError, match=r"no field named like the text .* fields found: 'age', 'name'.*--field"):
        choose_field(names, PERSONA_FIELDS)
    assert choose_field(names, PERSONA_FIELDS, "name") == "name"  # named by the user: fine
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"Text": "a long enough note", "id": 1}) + "\n")
    assert choose_field(texts, TEXT_FIELDS) == "Text"
    with pytest.raises(InputError, match=r"no field 'nope' in its first 1 records; fields found: 'Text', 'id'"):
        choose_field(texts, TEXT_FIELDS, "nope")
    with pytest.raises(InputError, match="did you mean 'Text'"):
        choose_field(texts, TEXT_FIELDS, "text")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    with pytest.raises(InputError, match="no records in it"):
        choose_field(blank, TEXT_FIELDS)


def test_count_records_for_progress(tmp_path: Path) -> None:
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(jsonl_bytes(ROWS))
    packed = tmp_path / "a.jsonl.gz"
    packed.write_bytes(gzip.compress(jsonl_bytes(ROWS)))
    assert count_records(plain) == 5 and count_records(packed) is None
