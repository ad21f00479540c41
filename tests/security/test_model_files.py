"""Security promises of mmfeat.load about hostile model files.

Each test builds the hostile file itself, from a real model saved with
:func:`mmfeat.save` and then edited as an attacker would (its schema, its
members, its zip headers), and loads it in a child process under an
address-space limit and a timeout (``_limits.run_limited``), so that a
regression is a failed test, not a crashed or exhausted machine.

The promises:

1. An mmfeat estimator whose fitted state was edited (sizes that disagree
   with the parameters, huge histograms, negative pyramid cells) is refused
   while it is rebuilt, naming the estimator and the attribute; the numba
   kernels never see it, and their wrappers refuse such state even when it
   is set after loading.
2. Sparse matrices, and decision trees once their type is trusted, whose
   indices point outside them (or, for trees, backwards: a loop) are
   refused before they are built.
3. A CNNExtractor whose network description disagrees with its weights is
   refused before any network is built (no memory spent on it).
4. Zip members are budgeted (``max_bytes``) before anything is inflated: a
   small file declaring or inflating to gigabytes is refused in bounded
   memory and time, an untrusted type costs no inflation at all, and the
   metadata member is read within 1 MiB.
5. A refused file imports nothing: the modules it names are not imported
   (their module-level code does not run).
6. The command line holds model files to the same budget
   (``--max-model-bytes``), and a model that cannot be written (a file-size
   limit) is a one-line ``OutputError`` that leaves the old file in place.
"""

import io
import json
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mmfeat
from mmfeat.exceptions import InputError, ModelStateError, UntrustedModelError

sys.path.insert(0, str(Path(__file__).parent))
from _limits import run_limited  # noqa: E402

# ---------------------------------------------------------------- helpers


def _schema(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("schema.json"))


def _rewrite(path, *, schema=None, members=None, out=None):
    """Copy a skops file with a new schema and/or replaced members."""
    members = members or {}
    out = out or path
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as w:
        for info, data in items:
            if info.filename == "schema.json" and schema is not None:
                data = json.dumps(schema).encode()
            data = members.get(info.filename, data)
            w.writestr(info.filename, data)
    return out


_FRESH = iter(range(10**9, 2 * 10**9))


def _set(node, text):
    """Edit a JSON value node; a fresh id, as skops shares nodes by id."""
    node["content"] = text
    node["__id__"] = next(_FRESH)


def _attr(schema, name):
    """The schema node of attribute ``name`` of the top-level object."""
    return schema["content"]["content"][name]


def _find(node, pred):
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if pred(cur):
                return cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    raise LookupError("no such node")


def _load_in_child(path, *, call="", memory_mb=400, timeout=90, load_args=""):
    """Load ``path`` in a limited child; report the error class and message."""
    code = f"""
        import json, resource, time
        import numpy as np
        import mmfeat
        t0 = time.perf_counter()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            model = mmfeat.load({str(path)!r}{load_args})
            {call or "pass"}
            result = {{"error": None}}
        except Exception as exc:
            result = {{"error": type(exc).__name__, "message": str(exc)}}
        result["seconds"] = time.perf_counter() - t0
        result["rss_growth_mb"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        print(json.dumps(result))
    """
    out = run_limited(code, memory_mb=memory_mb, timeout=timeout)
    assert not out.crashed, f"the child died (signal {-out.returncode}): {out.stderr}"
    assert out.returncode == 0, out.stderr
    return out.result


def _hog_model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mmfeat.features.image import HOGExtractor

    rng = np.random.default_rng(0)
    X = rng.random((12, 32, 32))
    y = np.arange(12) % 2
    hog = HOGExtractor(pixels_per_cell=(8, 8), cells_per_block=(2, 2))
    return make_pipeline(hog, LogisticRegression()).fit(X, y), X


# ---------------------------------------------------------------- 1. fitted state


@pytest.mark.parametrize(
    "attack",
    [
        "hog_n_features_out",
        "color_bins",
        "sift_negative_cells",
        "sift_huge_cells",
        "late_fusion_hog",
    ],
)
def test_edited_fitted_state_is_refused_on_load_never_reaching_a_kernel(
    attack, tmp_path
):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mmfeat.features.image import ColorHistogramExtractor, SIFTBoVWExtractor
    from mmfeat.features.text import TfidfExtractor
    from mmfeat.fusion import LateFusionClassifier

    rng = np.random.default_rng(0)
    images = rng.random((8, 32, 32))
    path = tmp_path / "model.skops"
    if attack == "hog_n_features_out":
        model, images = _hog_model()
        mmfeat.save(model, path)
        schema = _schema(path)
        node = _find(schema, lambda n: n.get("__class__") == "HOGExtractor")
        _set(node["content"]["content"]["n_features_out_"], "4")
        expect = "n_features_out_=4"
    elif attack == "color_bins":
        mmfeat.save(ColorHistogramExtractor().fit(), path)
        schema = _schema(path)
        bins = _attr(schema, "bins")["content"]
        for b in bins:
            _set(b, "256")
        _set(_attr(schema, "n_features_out_"), "2")
        expect = "bins"
    else:
        sift = SIFTBoVWExtractor(n_words=4, step=4, random_state=0)
        if attack == "late_fusion_hog":
            from mmfeat.features.image import HOGExtractor

            frame = __import__("pandas").DataFrame(
                {
                    "image": list(images),
                    "text": ["red shirt", "blue jeans"] * 4,
                }
            )
            y = np.arange(8) % 2
            hog = HOGExtractor(pixels_per_cell=(8, 8), cells_per_block=(2, 2))
            model = LateFusionClassifier(
                [
                    ("image", make_pipeline(hog, LogisticRegression()), "image"),
                    (
                        "text",
                        make_pipeline(TfidfExtractor(), LogisticRegression()),
                        "text",
                    ),
                ]
            ).fit(frame, y)
            mmfeat.save(model, path)
            schema = _schema(path)
            for node in [_find(schema, lambda n: n.get("__class__") == "HOGExtractor")]:
                _set(node["content"]["content"]["n_features_out_"], "1")
            expect = "HOGExtractor"
        else:
            mmfeat.save(sift.fit(list(images)), path)
            cells = -5 if attack == "sift_negative_cells" else 10**6
            bad = np.array([[cells, cells]], dtype=np.int64)
            buf = io.BytesIO()
            np.save(buf, bad)
            schema = _schema(path)
            member = _attr(schema, "cells_")["file"]
            _rewrite(path, members={member: buf.getvalue()})
            expect = "cells_"
    if attack != "sift_negative_cells" and attack != "sift_huge_cells":
        _rewrite(path, schema=schema)
    result = _load_in_child(path, call="model.transform(np.zeros((2, 32, 32)))")
    assert result["error"] == "InputError", result
    assert "ModelStateError" in result["message"] and expect in result["message"]
    assert str(path) in result["message"]


def test_late_fusion_with_edited_hog_fails_mmfeat_score_in_one_line(tmp_path):
    model, X = _hog_model()
    path = mmfeat.save(model, tmp_path / "model.skops")
    schema = _schema(path)
    node = _find(schema, lambda n: n.get("__class__") == "HOGExtractor")
    _set(node["content"]["content"]["n_features_out_"], "3")
    _rewrite(path, schema=schema)
    code = f"""
        import json, sys
        from mmfeat.cli import main
        import numpy as np
        import pandas as pd
        rc = main(["info", {str(path)!r}])
        print(json.dumps({{"rc": rc}}))
    """
    out = run_limited(code, memory_mb=400, timeout=90)
    assert not out.crashed, out.stderr
    text = out.stdout + out.stderr
    assert "n_features_out_=3" in text
    assert "Traceback" not in text


def test_kernel_wrappers_refuse_state_changed_after_loading():
    code = """
        import json
        import numpy as np
        from mmfeat.features.image import (
            ColorHistogramExtractor, HOGExtractor, SIFTBoVWExtractor)
        images = np.random.default_rng(0).random((4, 32, 32))
        out = {}
        hog = HOGExtractor(pixels_per_cell=(8, 8), cells_per_block=(2, 2))
        hog.fit(images)
        hog.n_features_out_ = 3
        color = ColorHistogramExtractor().fit()
        color.set_params(bins=(64, 64, 64))
        sift = SIFTBoVWExtractor(n_words=4, step=4, random_state=0).fit(list(images))
        sift.cells_ = np.array([[-3, 7]])
        for name, est in [("hog", hog), ("color", color), ("sift", sift)]:
            try:
                est.transform(list(images))
                out[name] = None
            except Exception as exc:
                out[name] = type(exc).__name__ + ": " + str(exc)
        print(json.dumps(out))
    """
    out = run_limited(code, memory_mb=400, timeout=120)
    assert not out.crashed, out.stderr
    assert (
        out.result["hog"].startswith("ModelStateError")
        and "n_features_out_" in (out.result["hog"])
    )
    assert out.result["color"].startswith("ModelStateError")
    assert (
        out.result["sift"].startswith("ModelStateError")
        and "cells" in (out.result["sift"])
    )


def test_consistent_models_still_round_trip_through_the_state_checks(tmp_path):
    from mmfeat.features.audio import BoAWExtractor, MFCCExtractor
    from mmfeat.features.image import ColorHistogramExtractor, SIFTBoVWExtractor

    rng = np.random.default_rng(0)
    images = list(rng.random((6, 32, 32)))
    clips = [rng.standard_normal(4000) for _ in range(4)]
    front = MFCCExtractor(sr=8000, n_fft=256, hop_length=64, n_mels=32, n_mfcc=12)
    for est, X in [
        (ColorHistogramExtractor().fit(), images),
        (SIFTBoVWExtractor(n_words=4, step=4, random_state=0).fit(images), images),
        (
            SIFTBoVWExtractor(
                n_words=4, step=4, encoding="soft", n_neighbors=3, random_state=0
            ).fit(images),
            images,
        ),
        (front.fit(), clips),
        (BoAWExtractor(frontend=front, n_words=4, random_state=0).fit(clips), clips),
    ]:
        path = mmfeat.save(est, tmp_path / "m.skops")
        np.testing.assert_array_equal(mmfeat.load(path).transform(X), est.transform(X))


def test_unpickling_checks_the_state_as_well():
    import pickle

    from mmfeat.features.image import ColorHistogramExtractor

    est = ColorHistogramExtractor().fit()
    est.n_features_out_ = 7
    with pytest.raises(ModelStateError, match="n_features_out_=7"):
        pickle.loads(pickle.dumps(est))


# ---------------------------------------------------------------- 2. sparse, trees


def test_sparse_coefficients_pointing_outside_the_matrix_are_refused(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 3)), np.arange(30) % 2
    model = LogisticRegression().fit(X, y).sparsify()
    good = mmfeat.save(model, tmp_path / "good.skops")
    np.testing.assert_array_equal(mmfeat.load(good).predict(X), model.predict(X))
    evil = model.coef_.tocsr()
    evil.indices = evil.indices.astype(np.int64)
    evil.indptr = evil.indptr.astype(np.int64)
    evil.indices[0] = 2**31
    model.coef_ = evil
    path = mmfeat.save(model, tmp_path / "evil.skops")
    result = _load_in_child(path, call="model.predict(np.ones((2, 3)))")
    assert result["error"] == "InputError", result
    assert "sparse matrix" in result["message"] and "outside" in result["message"]


@pytest.mark.parametrize("edit", ["loop", "outside", "feature"])
def test_decision_tree_with_bad_child_or_feature_indices_is_refused(edit, tmp_path):
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), (rng.random(40) > 0.5).astype(int)
    path = mmfeat.save(DecisionTreeClassifier().fit(X, y), tmp_path / "tree.skops")
    schema = _schema(path)
    tree = _find(schema, lambda n: n.get("__loader__") == "TreeNode")
    member = tree["content"]["content"]["nodes"]["file"]
    with zipfile.ZipFile(path) as z:
        nodes = np.load(io.BytesIO(z.read(member)))
    if edit == "loop":
        first = int(np.flatnonzero(nodes["left_child"] > 0)[-1])
        nodes["left_child"][first] = 0  # back to the root: apply() never ends
    elif edit == "outside":
        first = int(np.flatnonzero(nodes["left_child"] > 0)[0])
        nodes["right_child"][first] = 10**9
    else:
        first = int(np.flatnonzero(nodes["left_child"] > 0)[0])
        nodes["feature"][first] = 500
    buf = io.BytesIO()
    np.save(buf, nodes)
    _rewrite(path, members={member: buf.getvalue()})
    # skops rebuilds scikit-learn's Tree by calling it: a type to trust by name
    trust = ", trusted=['sklearn.tree._tree.Tree']"
    result = _load_in_child(
        path, call="model.predict(np.ones((3, 3)))", timeout=60, load_args=trust
    )
    assert result["error"] == "InputError", result
    assert "decision tree" in result["message"]


# ---------------------------------------------------------------- 3. CNN


def test_cnn_spec_that_disagrees_with_its_weights_is_refused_before_building(
    tmp_path,
):
    pytest.importorskip("torch", reason="CNNExtractor needs torch (the cnn extra)")
    from mmfeat.features.image import CNNExtractor

    cnn = CNNExtractor(backbone="simple", image_size=(32, 32), random_state=0).fit()
    path = mmfeat.save(cnn, tmp_path / "cnn.skops")
    loaded = mmfeat.load(path)
    X = np.random.default_rng(0).random((2, 32, 32, 3))
    np.testing.assert_allclose(loaded.transform(X), cnn.transform(X), rtol=1e-5)
    schema = _schema(path)
    spec = _attr(schema, "_spec_")["content"]
    _set(spec["width"], "3000")  # a ~3.7 GB network before the fix
    _rewrite(path, schema=schema)
    result = _load_in_child(path, memory_mb=700, timeout=120)
    assert result["error"] == "InputError", result
    assert "do not fit the network" in result["message"]
    assert result["seconds"] < 20 and result["rss_growth_mb"] < 300, result


# ---------------------------------------------------------------- 4. zip budgets


def _lying_sizes(data, member, declared):
    """Rewrite the local and central headers of ``member`` to say ``declared``."""
    data = bytearray(data)
    name = member.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while True:
            i = data.find(sig, start)
            if i < 0:
                break
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, i + offset, declared)
            start = i + 4
    return bytes(data)


def test_members_declared_over_the_budget_are_refused_before_inflating(tmp_path):
    from sklearn.preprocessing import StandardScaler

    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    member = _attr(_schema(path), "mean_")["file"]
    bomb = tmp_path / "bomb.skops"
    bomb.write_bytes(_lying_sizes(path.read_bytes(), member, 2**30))  # "1 GiB"
    with pytest.raises(InputError, match=r"max_bytes=536,870,912"):
        mmfeat.load(bomb)
    # the budget is a parameter, named in the error
    big = np.zeros(8 * 2**20 // 8)  # 8 MiB of zeros, ~8 KB compressed
    scaler = StandardScaler().fit([[0.0], [1.0]])
    scaler.mean_ = big
    path = _rewrite(mmfeat.save(scaler, tmp_path / "big.skops"))  # deflated
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match=r"over max_bytes=4,194,304"):
        mmfeat.load(path, max_bytes=4 * 2**20)
    assert mmfeat.load(path, max_bytes=16 * 2**20).mean_.shape == big.shape


def _zeros_npy(n_bytes):
    buf = io.BytesIO()
    np.save(buf, np.zeros(n_bytes // 8))
    return buf.getvalue()


def test_a_member_inflating_past_its_declared_size_is_cut_at_that_size(tmp_path):
    from sklearn.preprocessing import StandardScaler

    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    member = _attr(_schema(path), "mean_")["file"]
    # deflated in memory: only ~256 KB reach the disk
    _rewrite(path, members={member: _zeros_npy(256 * 2**20)})  # inflates to 256 MiB
    liar = tmp_path / "liar.skops"
    liar.write_bytes(_lying_sizes(path.read_bytes(), member, 1000))
    result = _load_in_child(liar, memory_mb=150, timeout=60)
    assert result["error"] == "InputError", result
    assert result["rss_growth_mb"] < 64, result


def test_an_untrusted_type_is_refused_without_inflating_anything(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(np.load)
    model.payload_ = np.zeros(4)
    path = mmfeat.save(model, tmp_path / "f.skops")
    member = _attr(_schema(path), "payload_")["file"]
    _rewrite(path, members={member: _zeros_npy(200 * 2**20)})  # 200 MiB inflated
    assert path.stat().st_size < 2 * 2**20
    result = _load_in_child(path, memory_mb=150, timeout=60)
    assert result["error"] == "UntrustedModelError", result
    assert "numpy.load" in result["message"]
    assert result["rss_growth_mb"] < 48 and result["seconds"] < 30, result


def test_metadata_member_is_read_within_one_mebibyte(tmp_path):
    from sklearn.preprocessing import StandardScaler

    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    _rewrite(path, members={"mmfeat-metadata.json": b" " * (64 * 2**20) + b"{}"})
    with pytest.raises(InputError, match="max_bytes=1,048,576"):
        mmfeat.model_metadata(path)


def test_a_model_file_larger_than_the_budget_is_refused_unread(tmp_path):
    from sklearn.preprocessing import StandardScaler

    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    with pytest.raises(InputError, match="the file is .* over max_bytes=100"):
        mmfeat.load(path, max_bytes=100)


# ---------------------------------------------------------------- 5. no imports


def test_a_refused_file_imports_none_of_the_modules_it_names(tmp_path):
    from sklearn.preprocessing import StandardScaler

    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_side_effect.py").write_text(
        f"open({str(marker)!r}, 'w').write('module code ran')\nclass X: pass\n"
    )
    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    schema = _schema(path)
    empty = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {},
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [],
        },
    }
    named = {
        "evil": ("evil_side_effect", "X", "ObjectNode"),
        # a trusted package's module that runs a benchmark when imported
        "bench": ("numpy.random._examples.numba.extending", "X", "ObjectNode"),
        "dtype": ("numpy.random._examples.cffi.extending", "X", "DTypeNode"),
        "exp": ("sklearn.experimental.enable_halving_search_cv", "X", "ObjectNode"),
    }
    for i, (attr, (module, cls, loader)) in enumerate(named.items()):
        schema["content"]["content"][attr] = {
            "__class__": cls,
            "__module__": module,
            "__loader__": loader,
            "content": empty,
            "__id__": 10**6 + i,
        }
    _rewrite(path, schema=schema)
    code = f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import mmfeat
        try:
            mmfeat.load({str(path)!r})
            err = None
        except Exception as exc:
            err = type(exc).__name__ + ": " + str(exc)
        names = [
            "evil_side_effect",
            "numpy.random._examples.numba.extending",
            "numpy.random._examples.cffi.extending",
            "sklearn.experimental.enable_halving_search_cv",
        ]
        print(json.dumps({{"err": err, "imported": [n for n in names
                                                    if n in sys.modules]}}))
    """
    out = run_limited(code, memory_mb=400, timeout=90)
    assert not out.crashed, out.stderr
    assert out.result["err"].startswith("UntrustedModelError"), out.result
    assert "evil_side_effect.X" in out.result["err"]
    assert out.result["imported"] == []
    assert not marker.exists()


def test_untrusted_error_is_still_raised_in_process(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    path = mmfeat.save(FunctionTransformer(np.load), tmp_path / "f.skops")
    with pytest.raises(UntrustedModelError, match="numpy.load"):
        mmfeat.load(path)
    assert mmfeat.load(path, trusted=["numpy.load"]).func is np.load


# ---------------------------------------------------------------- 6. CLI, save


def test_cli_holds_model_files_to_max_model_bytes(tmp_path, capsys):
    from sklearn.preprocessing import StandardScaler

    from mmfeat.cli import main

    path = mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), tmp_path / "s.skops")
    assert main(["info", str(path)]) == 0
    capsys.readouterr()
    assert main(["info", str(path), "--max-model-bytes", "100"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_bytes=100" in err[0], err


def test_save_under_a_file_size_limit_is_one_line_and_keeps_the_old_file(tmp_path):
    code = f"""
        import json, resource, signal
        import numpy as np
        import mmfeat
        from sklearn.preprocessing import StandardScaler
        path = {str(tmp_path / "m.skops")!r}
        mmfeat.save(StandardScaler().fit([[0.0], [1.0]]), path)
        before = open(path, "rb").read()
        big = StandardScaler().fit([[0.0], [1.0]])
        big.mean_ = np.random.default_rng(0).random(2**17)  # 1 MiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**18, 2**18))
        try:
            mmfeat.save(big, path)
            err = None
        except Exception as exc:
            err = [type(exc).__name__, str(exc), isinstance(exc, OSError)]
        import os
        print(json.dumps({{"err": err, "same": open(path, "rb").read() == before,
                          "files": sorted(os.listdir({str(tmp_path)!r}))}}))
    """
    out = run_limited(code, memory_mb=400, timeout=90)
    assert not out.crashed, out.stderr
    name, message, is_oserror = out.result["err"]
    assert name == "OutputError" and is_oserror
    assert "ulimit -f" in message and "\n" not in message
    assert out.result["same"] and out.result["files"] == ["m.skops"]


def test_trust_in_a_custom_setstate_follows_the_reviewed_method_not_its_name():
    from mmfeat._persistence import _rebuilt_without_code
    from mmfeat.features.image import CNNExtractor, HOGExtractor
    from mmfeat.utils._state import reviewed_setstate

    assert _rebuilt_without_code(HOGExtractor) and _rebuilt_without_code(CNNExtractor)

    class Overrides(HOGExtractor):  # a new __setstate__ nobody reviewed
        def __setstate__(self, state):
            super().__setstate__(state)

    class Inherits(HOGExtractor):  # the reviewed one, inherited
        pass

    assert not _rebuilt_without_code(Overrides)
    assert _rebuilt_without_code(Inherits)
    assert _rebuilt_without_code(reviewed_setstate(Overrides))
    with pytest.raises(TypeError, match="no __setstate__"):
        reviewed_setstate(Inherits)
