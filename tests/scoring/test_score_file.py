import os

import numpy as np
import pandas as pd
import pytest

from mmfeat import InputError, ParameterError
from mmfeat.scoring import BatchScorer, _files, count_records, score_file, score_frame
from tests.scoring._records import absolute


@pytest.fixture
def model(fitted):
    return fitted["late"]


def _read(path):
    return (
        pd.read_parquet(path)
        if str(path).endswith(".parquet")
        else pd.read_csv(path, keep_default_na=False, na_values=[""])
    )


def test_file_output_matches_scoring_the_whole_table(model, records_dir, tmp_path):
    folder, records = records_dir
    out = tmp_path / "pred.parquet"
    summary = score_file(
        model, folder / "records.csv", out, chunk_size=7, id_column="id"
    )
    assert summary["rows"] == 60 and summary["unscored"] == 0
    got = pd.read_parquet(out)
    want = score_frame(model, absolute(records, folder), id_column="id")
    assert got["id"].tolist() == records["id"].tolist()
    assert got["predict"].tolist() == want["predict"].tolist()
    np.testing.assert_allclose(got.iloc[:, 2:], want.iloc[:, 2:])
    # the parts folder is gone; the error report exists with its header
    assert not os.path.exists(f"{out}.parts")
    errors = pd.read_csv(tmp_path / "pred.errors.csv")
    assert list(errors.columns) == ["row", "id", "column", "source", "reason"]
    assert len(errors) == 0


def test_chunk_size_parallelism_and_formats_do_not_change_output(
    model, records_dir, tmp_path
):
    folder, records = records_dir
    parquet_in = tmp_path / "in.parquet"
    records.to_parquet(parquet_in)
    a = tmp_path / "a.csv"
    b = tmp_path / "b.parquet"
    score_file(model, folder / "records.csv", a, chunk_size=1000)
    score_file(model, parquet_in, b, chunk_size=9, n_jobs=2, root=folder)
    got_a, got_b = _read(a), _read(b)
    assert got_a["row"].tolist() == list(range(60))
    assert got_a["predict"].tolist() == got_b["predict"].tolist()
    np.testing.assert_allclose(got_a.iloc[:, 2:], got_b.iloc[:, 2:], atol=1e-9)


def test_bad_records_keep_their_rows_in_order(model, records_dir, tmp_path):
    folder, records = records_dir
    bad = records.copy()
    bad.loc[3, "image"] = "images/missing.png"
    bad.loc[10, "title"] = None
    bad.loc[11, ["image", "title"]] = None
    bad.loc[40, "image"] = "images"  # a directory
    bad.loc[40, "title"] = None
    (tmp_path / "images").symlink_to(folder / "images")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    summary = score_file(
        model,
        tmp_path / "bad.csv",
        tmp_path / "p.parquet",
        chunk_size=8,
        id_column="id",
    )
    got = pd.read_parquet(tmp_path / "p.parquet")
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert len(got) == 60 and got["id"].tolist() == records["id"].tolist()
    assert got["predict"].isna().tolist() == [i in (11, 40) for i in range(60)]
    assert summary == {**summary, "unscored": 2, "scored": 58}
    by_row = errors.groupby("row")["reason"].apply(" | ".join)
    assert sorted(by_row.index) == [3, 11, 40]
    assert "not found" in by_row[3]
    assert "no usable modality" in by_row[11]
    assert "directory" in by_row[40] and "no usable modality" in by_row[40]
    assert errors.loc[errors["row"] == 3, "id"].item() == "r003"


def test_empty_and_header_only_inputs_give_empty_outputs(model, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("id,image,title\n")
    for name in ("empty", "header"):
        summary = score_file(
            model, tmp_path / f"{name}.csv", tmp_path / f"{name}.parquet"
        )
        got = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert summary["rows"] == 0 and len(got) == 0
        assert list(got.columns) == ["row", "predict", "proba_checks", "proba_stripes"]


def test_text_cells_are_kept_as_text(model, records_dir, tmp_path):
    folder, records = records_dir
    odd = records.head(4).copy()
    odd["title"] = ["NA", "None", "42", "null"]
    odd.to_csv(tmp_path / "odd.csv", index=False)
    (tmp_path / "images").symlink_to(folder / "images")
    score_file(model, tmp_path / "odd.csv", tmp_path / "odd.parquet")
    errors = pd.read_csv(tmp_path / "odd.errors.csv")
    assert len(errors) == 0  # every title is a string, none is "missing"


def test_interrupted_run_resumes_without_loss_or_duplicates(
    model, records_dir, tmp_path, monkeypatch
):
    folder, _ = records_dir
    records = folder / "records.csv"
    full = tmp_path / "full.csv"
    score_file(model, records, full, chunk_size=7, id_column="id")
    out = tmp_path / "part.csv"
    real = _files._score_chunk
    calls = []

    def dying(scorer, frame, start, source):
        calls.append(start)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(scorer, frame, start, source)

    monkeypatch.setattr(_files, "_score_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        score_file(model, records, out, chunk_size=7, id_column="id")
    monkeypatch.setattr(_files, "_score_chunk", real)
    assert not out.exists()
    assert sorted(os.listdir(f"{out}.parts"))[-1] == "part-000002.parquet"
    with pytest.raises(ParameterError, match="--resume"):
        score_file(model, records, out, chunk_size=7, id_column="id")
    with pytest.raises(ParameterError, match="chunk_size"):
        score_file(model, records, out, chunk_size=5, id_column="id", resume=True)
    # the scorer's own settings are what the manifest holds (the CLI passes
    # a BatchScorer-free model; an API caller may pass a configured scorer)
    confined = BatchScorer(model, id_column="id", root=folder, confine_to_root=True)
    with pytest.raises(ParameterError, match="path confinement"):
        score_file(confined, records, out, chunk_size=7, resume=True)
    summary = score_file(model, records, out, chunk_size=7, id_column="id", resume=True)
    assert summary["resumed_chunks"] == 3
    assert out.read_bytes() == full.read_bytes()


def test_bad_arguments_are_refused_clearly(model, records_dir, tmp_path):
    folder, _ = records_dir
    with pytest.raises(InputError, match="records file not found"):
        score_file(model, tmp_path / "nope.csv", tmp_path / "o.csv")
    with pytest.raises(ParameterError, match=r"\.csv or \.parquet"):
        score_file(model, folder / "records.csv", tmp_path / "o.json")
    with pytest.raises(ParameterError, match="chunk_size"):
        score_file(model, folder / "records.csv", tmp_path / "o.csv", chunk_size=0)
    (tmp_path / "latin1.csv").write_bytes(
        "id,image,title\n1,a.png,caf\xe9\n".encode("latin-1")
    )
    with pytest.raises(InputError, match="UTF-8"):
        score_file(model, tmp_path / "latin1.csv", tmp_path / "o.csv")


def test_count_records(records_dir, tmp_path):
    folder, records = records_dir
    assert count_records(folder / "records.csv") == 60
    records.to_parquet(tmp_path / "r.parquet")
    assert count_records(tmp_path / "r.parquet") == 60


def test_dask_cluster_gives_the_local_predictions(model, records_dir, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from mmfeat.scoring import parallel_backend

    folder, records = records_dir
    local = tmp_path / "local.parquet"
    score_file(model, folder / "records.csv", local, chunk_size=11)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # a free port: 8787 may be taken
    ) as cluster:
        with parallel_backend(cluster.scheduler_address) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            remote = tmp_path / "remote.parquet"
            score_file(model, folder / "records.csv", remote, chunk_size=11)
            # the command line's --scheduler, with mmfeat.parallel_backend
            import mmfeat
            from mmfeat.cli import main

            assert mmfeat.parallel_backend is parallel_backend
            mmfeat.save(model, tmp_path / "model.skops")
            assert (
                main(
                    [
                        "score",
                        str(tmp_path / "model.skops"),
                        str(folder / "records.csv"),
                        "-o",
                        str(tmp_path / "cli.parquet"),
                        "--scheduler",
                        cluster.scheduler_address,
                        "--chunk-size",
                        "13",
                    ]
                )
                == 0
            )
        # partition by partition: a Dask DataFrame through map_partitions
        import dask.dataframe as dd

        with distributed.Client(cluster):
            scorer = BatchScorer(model, id_column="id", root=folder)
            frame = dd.from_pandas(records, npartitions=3)
            mapped = frame.map_partitions(scorer, meta=scorer.meta).compute()
    pd.testing.assert_frame_equal(pd.read_parquet(local), pd.read_parquet(remote))
    pd.testing.assert_frame_equal(
        pd.read_parquet(local), pd.read_parquet(tmp_path / "cli.parquet")
    )
    assert mapped["id"].tolist() == records["id"].tolist()
    assert (
        mapped["predict"].to_numpy(dtype=object)
        == pd.read_parquet(local)["predict"].to_numpy(dtype=object)
    ).all()


def test_confine_to_root_refuses_paths_outside_the_root(model, records_dir, tmp_path):
    folder, records = records_dir
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "images").symlink_to(folder / "images")  # followed: outside
    table = records.head(6).copy()
    table.loc[0, "image"] = str(folder / "images" / "000.png")  # absolute
    table.loc[1, "image"] = "../../etc/passwd"
    table.to_csv(inside / "r.csv", index=False)
    out = tmp_path / "p.parquet"
    summary = score_file(model, inside / "r.csv", out, confine_to_root=True)
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert summary["rows"] == 6
    assert sorted(errors["row"]) == list(range(6))
    assert errors["reason"].str.contains("resolves outside the root").all()
    # the titles still score every row
    assert summary["unscored"] == 0
    # unconfined, the links are followed and /etc/passwd is opened (and
    # refused as an image): one error entry, not six
    free = score_file(model, inside / "r.csv", tmp_path / "q.parquet")
    errors = pd.read_csv(tmp_path / "q.errors.csv")
    assert free["errors"] == 1 and errors["row"].tolist() == [1]
    assert not errors["reason"].str.contains("outside").any()
