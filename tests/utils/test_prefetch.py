import threading

import pytest

from mmfeat.exceptions import InputError
from mmfeat.utils._parallel import prefetch_batches


def _double(item):
    if item == "bad":
        raise InputError("cannot read", source=f"file-{item}")
    return 2 * item


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("ahead", [1, 3])
def test_batches_come_in_order_with_rows_aligned(n_jobs, ahead):
    items = [1, None, 3, "bad", 5, 6, 7]
    made = []

    def make(start, chunk):
        made.append((start, len(chunk)))
        return _double, f"state{start}"

    out = list(
        prefetch_batches(make, items, 3, n_jobs=n_jobs, on_error="missing", ahead=ahead)
    )
    assert made == [(0, 3), (3, 3), (6, 1)]
    assert [o[0] for o in out] == [0, 3, 6]
    assert [o[1] for o in out] == ["state0", "state3", "state6"]
    assert [o[2] for o in out] == [[2, None, 6], [None, 10, 12], [14]]
    (err,) = out[1][3]
    assert (err.row, err.source, err.reason) == (3, "file-bad", "cannot read")


def test_raise_names_the_row_and_stops():
    with pytest.raises(InputError, match=r"row 3 \(file-bad\): cannot read"):
        list(
            prefetch_batches(
                lambda s, c: (_double, None), [1, 2, 3, "bad"], 2, n_jobs=2
            )
        )


def test_pool_threads_end_when_the_consumer_stops_early():
    before = threading.active_count()
    gen = prefetch_batches(lambda s, c: (_double, None), list(range(100)), 5, n_jobs=2)
    next(gen)
    gen.close()
    assert threading.active_count() <= before
