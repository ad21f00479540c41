"""Outputs and resume of ``score_file`` / ``mmfeat score``: what is promised.

1. An output (predictions or error report) that is the records file, or the
   other output, is refused before anything is written: same path, a
   symbolic link or a hard link. The input is left byte for byte.
2. A missing or non-folder output folder is refused before a row is scored.
3. Two runs on one output never overlap: the second stops at once, naming
   the first's PID and start time, and does not advise ``--resume``; the
   first finishes and its output is whole.
4. The lock of a run killed with ``SIGKILL`` is taken over by the next run,
   which resumes to the uninterrupted output.
5. Resume compares the records file's content (SHA-256), not its size and
   modification time: a same-size, same-mtime different file is refused.
6. Temporaries left beside the output by a run killed while assembling are
   removed by the next run (only this output's, only those of dead PIDs).
7. A write that fails (``ulimit -f``, disk full) is one line that says what
   to do; no temporary is left, an existing output is left as it was, and
   the finished chunks resume once the cause is gone.
8. Worker processes end within seconds when the scoring process is killed
   with ``SIGKILL``.

Every attack is built here, in ``tmp_path``, and runs against real
processes where the promise is about processes.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from mmfeat import ParameterError
from mmfeat.exceptions import OutputError
from mmfeat.scoring import _files, score_file
from tests.security._limits import run_limited
from tests.security._scoring import (
    child_env,
    start_scoring,
    write_models,
    write_records,
)


@pytest.fixture
def slow(tmp_path, monkeypatch):
    """The folder with ``slowmodel.py`` (importable here and in children)."""
    write_models(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from slowmodel import SlowClassifier

    return tmp_path, SlowClassifier


def _wait_for(path, proc, timeout=90):
    """Wait until ``path`` exists while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before {path} appeared: {out} {err}")
        time.sleep(0.02)
    raise AssertionError(f"no {path} in {timeout} s")


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if "tmp" in n)


def test_output_that_is_the_input_is_refused_also_through_links(slow):
    folder, Slow = slow
    model = Slow().fit(None, None)
    records = folder / "records.csv"
    write_records(records, 30)
    before = records.read_bytes()
    (folder / "sym.csv").symlink_to(records)
    os.link(records, folder / "hard.csv")
    (folder / "sub").mkdir()
    (folder / "viafolder").symlink_to(folder)
    attacks = [
        dict(output=records),
        dict(output=folder / "sym.csv"),
        dict(output=folder / "hard.csv"),
        dict(output=folder / "viafolder" / "records.csv"),
        dict(output=folder / "sub" / "o.csv", errors=records),
        dict(output=folder / "sub" / "o.csv", errors=folder / "hard.csv"),
    ]
    for attack in attacks:
        with pytest.raises(ParameterError, match="would replace the records") as err:
            score_file(model, records, attack["output"], errors=attack.get("errors"))
        assert str(records) in str(err.value)
    # the two outputs may not be one file either
    with pytest.raises(ParameterError, match="are the same file"):
        score_file(model, records, folder / "o.csv", errors=folder / "o.csv")
    (folder / "o_link.csv").symlink_to(folder / "o.csv")
    with pytest.raises(ParameterError, match="are the same file"):
        score_file(model, records, folder / "o.csv", errors=folder / "o_link.csv")
    assert records.read_bytes() == before
    assert not any(n.endswith(".parts") for n in os.listdir(folder))


def test_bad_output_folder_is_refused_before_any_row_is_scored(slow, monkeypatch):
    folder, Slow = slow
    model = Slow().fit(None, None)
    records = folder / "records.csv"
    write_records(records, 30)
    (folder / "plain.txt").write_text("a file, not a folder")
    (folder / "sub.csv").mkdir()  # a folder with a table's name
    scored = []
    real = _files._score_chunk
    monkeypatch.setattr(_files, "_score_chunk", lambda *a: scored.append(1) or real(*a))
    cases = [
        (dict(errors=folder / "plain.txt" / "e.csv"), "is a file, not a folder"),
        (dict(errors=folder / "nowhere" / "e.csv"), "does not exist"),
        (dict(output=folder / "plain.txt" / "o.csv"), "is a file, not a folder"),
        (dict(output=folder / "sub.csv"), "is a folder"),
    ]
    for kwargs, reason in cases:
        output = kwargs.pop("output", folder / "o.csv")
        with pytest.raises(ParameterError, match=reason) as err:
            score_file(model, records, output, **kwargs)
        assert "choose" in str(err.value) or "give a file" in str(err.value)
    assert scored == []
    assert not (folder / "o.csv").exists()
    assert not (folder / "o.csv.parts").exists()


def test_second_run_on_the_same_output_stops_while_the_first_runs(slow):
    folder, Slow = slow
    records = folder / "records.csv"
    frame = write_records(records, 300)
    out = folder / "out.csv"
    hold = folder / "hold"
    hold.touch()
    # the first run finishes two chunks, then waits in its third
    first = start_scoring(folder, records, out, chunk_size=15, hold=hold, hold_after=2)
    try:
        _wait_for(f"{hold}.waiting-{first.pid}", first)
        # the case of the issue: `mmfeat score --resume` started beside it
        second = start_scoring(folder, records, out, chunk_size=15, resume=True)
        sout, serr = second.communicate(timeout=120)
        # and a plain run, in this process
        with pytest.raises(OutputError, match="another mmfeat score") as plain:
            score_file(Slow().fit(None, None), records, out, chunk_size=15)
        assert first.poll() is None, "the first run ended before the second ran"
        hold.unlink()
        fout, ferr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2, serr
    refused = json.loads(sout.strip().splitlines()[-1])
    assert refused["error"] == "OutputError"
    for message in (refused["message"], str(plain.value)):
        assert f"writing to {out}" in message
        assert f"pid {first.pid} " in message and " since " in message
        assert "resume" not in message
    assert plain.value.errno == errno.EBUSY
    assert first.returncode == 0, ferr
    summary = json.loads(fout.strip().splitlines()[-1])
    assert summary["rows"] == 300 and summary["stale_lock"] is None
    got = pd.read_csv(out, dtype={"id": str})
    assert got["id"].tolist() == frame["id"].tolist()
    assert got["predict"].tolist() == (frame["a"] > frame["b"]).astype(int).tolist()
    assert not (folder / "out.csv.parts").exists()


def test_lock_of_a_killed_run_is_taken_over_and_resume_completes(slow, caplog):
    folder, Slow = slow
    records = folder / "records.csv"
    write_records(records, 200)
    model = Slow().fit(None, None)
    full = folder / "full.csv"
    score_file(model, records, full, chunk_size=10, id_column="id")
    out = folder / "killed.csv"  # the held run differs only in `hold`
    parts = folder / "killed.csv.parts"
    hold = folder / "hold"
    hold.touch()
    proc = start_scoring(folder, records, out, chunk_size=10, hold=hold, hold_after=3)
    try:
        _wait_for(f"{hold}.waiting-{proc.pid}", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    owner = json.loads((parts / "lock").read_text())
    assert owner["pid"] == proc.pid  # the dead run's lock is still there
    with caplog.at_level("WARNING", logger="mmfeat.scoring._files"):
        summary = score_file(
            model,
            records,
            out,
            chunk_size=10,
            id_column="id",
            resume=True,
            model_id="slow",
        )
    assert summary["stale_lock"]["pid"] == proc.pid
    assert summary["resumed_chunks"] == 3
    assert "taking over the lock" in caplog.text
    assert out.read_bytes() == full.read_bytes()
    assert not parts.exists()


def test_resume_refuses_a_same_size_same_mtime_different_input(slow, monkeypatch):
    folder, Slow = slow
    model = Slow().fit(None, None)
    records = folder / "records.csv"
    write_records(records, 60)
    out = folder / "out.csv"
    real = _files._score_chunk
    calls = []

    def dying(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(_files, "_score_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        score_file(model, records, out, chunk_size=10, id_column="id")
    monkeypatch.setattr(_files, "_score_chunk", real)
    # other records, byte for byte the same length, then the old mtime back
    stat = records.stat()
    data = records.read_bytes()
    swapped = data.replace(b"r0000", b"x0000")
    assert swapped != data and len(swapped) == len(data)
    records.write_bytes(swapped)
    os.utime(records, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (records.stat().st_size, records.stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    with pytest.raises(ParameterError, match=r"content \(SHA-256\) changed") as err:
        score_file(model, records, out, chunk_size=10, id_column="id", resume=True)
    assert "start over" in str(err.value)
    assert not out.exists()  # nothing stitched from the old chunks
    # the same content (even with a new mtime) resumes
    records.write_bytes(data)
    summary = score_file(
        model, records, out, chunk_size=10, id_column="id", resume=True
    )
    assert summary["resumed_chunks"] == 2 and summary["rows"] == 60


KILLED_IN_ASSEMBLY = """
import json, os, signal, sys
from slowmodel import SlowClassifier
from mmfeat.scoring import score_file

real = os.replace
def replace(src, dst):
    if os.path.basename(dst) == "out.csv":  # the whole output is written: die
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
os.replace = replace
score_file(SlowClassifier().fit(None, None), "records.csv", "out.csv", chunk_size=10)
"""


def test_temporaries_left_by_a_kill_during_assembly_are_removed_next_run(slow):
    folder, Slow = slow
    write_records(folder / "records.csv", 50)
    died = run_limited(KILLED_IN_ASSEMBLY, cwd=str(folder), env=child_env(folder))
    assert died.returncode == -signal.SIGKILL, died.stderr
    dead_pid = int(_temporaries(folder)[0].rsplit("-", 1)[1])
    assert _temporaries(folder) == [f"out.csv.mmfeat-tmp-{dead_pid}"]
    # beside it: a file of another output, and one of a live process (pid 1)
    (folder / f"other.csv.mmfeat-tmp-{dead_pid}").write_text("not ours")
    (folder / "out.csv.mmfeat-tmp-1").write_text("a live writer's")
    (folder / f"out.csv.tmp{dead_pid}").write_text("an older version's")
    summary = score_file(
        Slow().fit(None, None),
        folder / "records.csv",
        folder / "out.csv",
        chunk_size=10,
        resume=True,
    )
    assert summary["rows"] == 50 and summary["resumed_chunks"] == 5
    assert _temporaries(folder) == [
        f"other.csv.mmfeat-tmp-{dead_pid}",
        "out.csv.mmfeat-tmp-1",
    ]


FILE_SIZE_LIMIT = """
import json, resource, signal
from slowmodel import SlowClassifier
from mmfeat.scoring import score_file

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
model = SlowClassifier().fit(None, None)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    score_file(model, "records.csv", "out.csv", chunk_size=500, id_column="id")
    print(json.dumps({"error": None}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc),
                      "errno": getattr(exc, "errno", None),
                      "oserror": isinstance(exc, OSError)}))
"""


def test_file_size_limit_is_one_line_and_leaves_no_temporary(slow):
    folder, Slow = slow
    write_records(folder / "records.csv", 6000)  # 190 kB of CSV out
    (folder / "out.csv").write_text("the previous output\n")
    got = run_limited(
        FILE_SIZE_LIMIT, cwd=str(folder), env=child_env(folder), timeout=120
    )
    assert not got.crashed and not got.timed_out, got.stderr
    err = got.result
    assert err["error"] == "OutputError" and err["oserror"], got.stdout + got.stderr
    assert err["errno"] == errno.EFBIG
    assert "\n" not in err["message"]
    assert err["message"].startswith("cannot write out.csv: the file size limit")
    assert "64 KiB" in err["message"] and "ulimit -f" in err["message"]
    assert _temporaries(folder) == []
    assert (folder / "out.csv").read_text() == "the previous output\n"
    parts = folder / "out.csv.parts"
    assert not (parts / "lock").exists()  # released on the failure
    assert sum(n.startswith("part-") for n in os.listdir(parts)) == 12
    # the limit gone, the finished chunks are used
    summary = score_file(
        Slow().fit(None, None),
        folder / "records.csv",
        folder / "out.csv",
        chunk_size=500,
        id_column="id",
        resume=True,
    )
    assert summary["resumed_chunks"] == 12 and summary["rows"] == 6000
    assert len(pd.read_csv(folder / "out.csv")) == 6000


def test_disk_full_is_one_line_and_keeps_the_previous_output(slow, monkeypatch):
    # a full disk cannot be made without privileges: the CSV writer raises
    # the ENOSPC that write(2) gives, the rest is the real code path
    folder, Slow = slow
    write_records(folder / "records.csv", 40)
    (folder / "out.csv").write_text("the previous output\n")

    def full(self, fh=None, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(OutputError) as err:
        score_file(Slow().fit(None, None), folder / "records.csv", folder / "out.csv")
    message = str(err.value)
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert message.startswith(f"cannot write {folder / 'out.csv'}: no space left")
    assert "free space" in message and "\n" not in message
    assert (folder / "out.csv").read_text() == "the previous output\n"
    assert _temporaries(folder) == []


def _descendants(pid):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in (b"Z", b"X"):
            children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_workers_exit_when_the_scoring_process_is_killed(slow):
    folder, _ = slow
    records = folder / "records.csv"
    write_records(records, 400)
    hold = folder / "hold"
    hold.touch()
    with open(folder / "child.log", "w") as log:
        proc = start_scoring(
            folder,
            records,
            folder / "out.csv",
            chunk_size=20,
            n_jobs=2,
            hold=hold,
            log=log,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            waiting = [n for n in os.listdir(folder) if n.startswith("hold.waiting-")]
            if len(waiting) >= 2:  # both workers are inside a chunk
                break
            time.sleep(0.05)
        everything = _descendants(proc.pid)
        workers = [p for p in everything if "LokyProcess" in _cmdline(p)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    try:
        assert len(workers) == 2, (everything, (folder / "child.log").read_text())
        t0 = time.monotonic()
        while time.monotonic() < t0 + 10 and any(_alive(p) for p in everything):
            time.sleep(0.05)
        took = time.monotonic() - t0
        left = [(p, _cmdline(p)) for p in everything if _alive(p)]
        assert left == [], f"processes outlived the killed scorer by {took:.1f} s"
    finally:
        hold.unlink()
        for p in everything:  # never leave them to the next test
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_worker_watch_starts_nothing_in_the_parent_or_under_a_foreign_parent():
    # in the scoring process itself, and in a process whose parent is not
    # the scorer (a Dask worker), the watch starts no thread
    from mmfeat.utils import _dask

    before = set(_dask._WATCHING)
    _dask.exit_with_parent(os.getpid())
    _dask.exit_with_parent(None)
    # a process that is alive and not our parent: a child of ours (PID 1 is
    # our parent when the test run was started detached, with nohup)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _dask.exit_with_parent(child.pid)
    finally:
        child.kill()
        child.wait()
    assert set(_dask._WATCHING) == before
