"""Records files: quote-aware counts, one Parquet open, one root resolution."""

import os

import numpy as np
import pandas as pd
import pytest

from mmfeat.scoring import RecordsTable, count_records, resolve_paths, score_file
from mmfeat.scoring._records import CsvRecordCounter


def test_count_records_is_quote_aware(tmp_path):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "title": ["one\nline\r\nbreaks", 'a "quoted" word', "plain", 'x\n"\n'],
        }
    )
    frame.to_csv(tmp_path / "r.csv", index=False)
    assert (tmp_path / "r.csv").read_bytes().count(b"\n") > 5
    assert count_records(tmp_path / "r.csv") == len(pd.read_csv(tmp_path / "r.csv"))
    with RecordsTable(tmp_path / "r.csv") as table:
        digest, n = table.fingerprint()
    assert n == 4 and len(digest) == 64
    # no newline at the end, a header alone, an empty file
    (tmp_path / "last.csv").write_bytes(b'id,t\n1,"a\nb"\n2,c')
    (tmp_path / "head.csv").write_bytes(b"id,t\n")
    (tmp_path / "none.csv").write_bytes(b"")
    assert [count_records(tmp_path / f"{n}.csv") for n in ("last", "head", "none")] == [
        2,
        0,
        0,
    ]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_csv_record_counter_across_block_boundaries(block):
    data = b'id,t\n1,"a\n""b""\nc"\n2,"x"\n3,y\n'
    counter = CsvRecordCounter()
    for i in range(0, len(data), block):
        counter(data[i : i + block])
    assert counter.records == 3


def test_score_file_opens_a_parquet_input_once(
    fitted, records_dir, tmp_path, monkeypatch
):
    import pyarrow.parquet as pq

    folder, records = records_dir
    records.to_parquet(tmp_path / "in.parquet")
    opened = []
    real = pq.ParquetFile.__init__

    def counting(self, source, *args, **kwargs):
        if os.fspath(source) == str(tmp_path / "in.parquet"):
            opened.append(1)
        real(self, source, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "__init__", counting)
    summary = score_file(
        fitted["late"],
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        id_column="id",
        root=folder,
        chunk_size=16,
    )
    assert summary["rows"] == 60 and summary["unscored"] == 0
    assert len(opened) == 1


def test_resolve_paths_resolves_the_root_once(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    calls = []
    real = os.path.realpath

    def counting(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", counting)
    items = ["a.png"] * 50 + ["../x.png", None, str(tmp_path / "in" / "a.png")]
    paths, refused = resolve_paths(items, tmp_path / "in", confine=True)
    assert calls.count(str(tmp_path / "in")) == 1
    assert [i for i, _ in refused] == [50]
    assert "resolves outside the root" in refused[0][1].reason
    assert paths[50] is None and paths[51] is None
    assert paths[0] == paths[52] == real(tmp_path / "in" / "a.png")
    joined, none = resolve_paths(["a.png", np.nan], tmp_path)
    assert joined[0] == os.path.join(tmp_path, "a.png") and none == []
