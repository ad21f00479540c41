"""Table and CSV input of ``score_file`` / ``mmfeat score``: what is promised.

1. A CSV whose header names one column twice is refused before anything is
   scored, naming the column, its positions and the name pandas would have
   given the second one; so is a Parquet file with two fields of one name.
   No output and no parts folder are left.
2. A CSV that is not UTF-8 is refused with the true byte offset and line of
   its first bad byte, wherever it is: in the header, in a later chunk,
   after a multi-byte character split across read blocks, cut off at the
   end of the file.
3. A 200 000-row file streams through in flat memory: its peak is that of a
   file ten times smaller, under an address-space limit.

Every attack is built here, in ``tmp_path``.
"""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfeat import InputError
from mmfeat.scoring import iter_records, read_records, score_file
from tests.security._limits import run_limited
from tests.security._scoring import child_env, write_models, write_records


@pytest.fixture
def slow(tmp_path, monkeypatch):
    write_models(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from slowmodel import SlowClassifier

    return tmp_path, SlowClassifier().fit(None, None)


def _left(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("out"))


def test_csv_naming_a_column_twice_is_refused_before_scoring(slow):
    folder, model = slow
    # the model reads `a`; a second `a` would silently become `a.1`
    lines = ["id,a,b,a"] + [f"r{i},{i},{100 - i},{i % 7}" for i in range(50)]
    (folder / "dup.csv").write_text("\n".join(lines) + "\n")
    for read in (
        lambda: score_file(model, folder / "dup.csv", folder / "out.csv"),
        lambda: read_records(folder / "dup.csv"),
        lambda: next(iter_records(folder / "dup.csv", 10)),
    ):
        with pytest.raises(InputError) as err:
            read()
        message = str(err.value)
        assert "duplicate column names: 'a' at columns 2, 4" in message
        assert "'a.1'" in message and "distinct name" in message
        assert err.value.source == str(folder / "dup.csv")
    assert _left(folder) == []


def test_parquet_naming_a_column_twice_is_refused_naming_it(slow):
    folder, model = slow
    table = pa.table(
        [pa.array(["r0", "r1"]), pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])],
        names=["id", "a", "b", "a"],
    )
    pq.write_table(table, folder / "dup.parquet")
    for read in (
        lambda: score_file(model, folder / "dup.parquet", folder / "out.csv"),
        lambda: read_records(folder / "dup.parquet"),
    ):
        with pytest.raises(InputError, match="'a' at columns 2, 4") as err:
            read()
        assert "distinct name" in str(err.value)
    assert _left(folder) == []


def _bad_at(data, at):
    """``data`` with a Latin-1 "é" put in at byte ``at``; its line number."""
    return data[:at] + b"\xe9" + data[at:], data[:at].count(b"\n") + 1


def test_non_utf8_byte_is_reported_at_its_true_offset_and_line(slow):
    folder, model = slow
    # the case of the issue: first bad byte at 2044, on line 21
    head = b"id,a,b\n" + b"".join(
        f"r{i:03d},{i % 10},{'x' * 88}\n".encode() for i in range(19)
    )
    row = b"r019,1,"
    data, line = _bad_at(head + row + b"caf" + b"y" * 300 + b"\n", 2044)
    assert line == 21 and data.index(b"\xe9") == 2044
    (folder / "latin1.csv").write_bytes(data)
    for read in (
        lambda: score_file(model, folder / "latin1.csv", folder / "out.csv"),
        lambda: list(iter_records(folder / "latin1.csv", 5)),
    ):
        with pytest.raises(InputError) as err:
            read()
        assert "byte 2044 (line 21) is 0xe9" in str(err.value)
        assert "save the CSV as UTF-8" in str(err.value)
    assert _left(folder) == []


@pytest.mark.parametrize("where", ["header", "late chunk", "after split char", "end"])
def test_non_utf8_offset_is_true_wherever_the_byte_is(slow, where):
    folder, model = slow
    block = 1 << 20  # the scanner's read size: a character may straddle it
    rows = [b"id,a,b"] + [b"r%06d,%d,%d" % (i, i % 9, i % 5) for i in range(100_000)]
    data = b"\n".join(rows) + b"\n"
    if where == "header":
        data, line = _bad_at(data, 3)
    elif where == "late chunk":
        data, line = _bad_at(data, len(data) - 500)
    elif where == "after split char":
        # a valid two-byte "é" across the block boundary, the bad byte after
        data = data[: block - 1] + "é".encode() + data[block - 1 :]
        assert data[block - 1 : block + 1] == "é".encode()
        data, line = _bad_at(data, block + 40)
    else:
        data = data + b"r9,1,\xc3"  # cut in the middle of a character
        line = data.count(b"\n") + 1
    at = data.index(b"\xe9") if where != "end" else len(data) - 1
    (folder / "bad.csv").write_bytes(data)
    with pytest.raises(InputError) as err:
        score_file(model, folder / "bad.csv", folder / "out.csv", chunk_size=5000)
    assert f"byte {at} (line {line})" in str(err.value)
    assert _left(folder) == []


STREAM = """
import json, resource, sys
from slowmodel import SlowClassifier
from mmfeat.scoring import score_file

summary = score_file(SlowClassifier().fit(None, None), sys.argv[1] + ".csv",
                     sys.argv[1] + ".out.parquet", chunk_size=5000, id_column="id")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": summary["rows"], "peak_mb": peak}))
"""


def test_200k_rows_stream_in_flat_memory(slow):
    folder, _ = slow
    peaks = {}
    for name, n in (("small", 20_000), ("big", 200_000)):
        write_records(folder / f"{name}.csv", n)
        got = run_limited(
            f"import sys; sys.argv[1:] = [{name!r}]\n" + STREAM,
            memory_mb=1024,
            timeout=120,
            cwd=str(folder),
            env=child_env(folder),
        )
        assert got.returncode == 0 and not got.timed_out, got.stderr[-2000:]
        assert got.result["rows"] == n
        peaks[name] = got.result["peak_mb"]
    # ten times the rows, the same memory (to within what pyarrow pools)
    assert peaks["big"] - peaks["small"] < 60, peaks
