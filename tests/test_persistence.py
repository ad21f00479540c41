"""Tests for mmfeat.save / mmfeat.load / mmfeat.model_metadata.

Round trips use real mmfeat models on small in-memory data and compare their
outputs exactly. The refusal tests use files crafted to do harm on load (run
``eval``, create a file through ``numpy.memmap``, delete a folder through
``numpy.lib._datasource.DataSource``, unpickle ``os.mkdir``); each checks that
:func:`mmfeat.load` refuses the file and that the harm did not happen, and a
control shows that the file does the harm when its types are trusted, so the
refusal is what protects.
"""

import gc
import io
import json
import os
import pickle
import sys
import zipfile
from datetime import datetime, timedelta, timezone

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy
import sklearn
import skops
import skops.io as sio
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import mmfeat
from mmfeat._persistence import METADATA_MEMBER
from mmfeat.exceptions import (
    InputError,
    ModelVersionWarning,
    ParameterError,
    UntrustedModelError,
)
from mmfeat.features.audio import MFCCExtractor
from mmfeat.features.image import HOGExtractor, SIFTBoVWExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import (
    LateFusionClassifier,
    ModalityStackingClassifier,
    MultimodalFuser,
)
from mmfeat.preprocessing import ImageAugmenter

# ---------------------------------------------------------------- data + models

_WORDS = {
    0: ["red", "shirt", "cotton", "summer", "tee"],
    1: ["blue", "jeans", "denim", "winter", "boot"],
}


def _av(n=40, seed=0):
    """An image column (16x16 stripes, object) and a text column; 2 classes."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    stripes = (np.arange(16) // 2 % 2).astype(float)
    images, texts = [], []
    for label in y:
        image = np.tile(stripes[:, None], (1, 16))
        image = image.T if label == 1 else image
        images.append(np.clip(image + 0.2 * rng.standard_normal((16, 16)), 0, 1))
        texts.append(" ".join(rng.choice(_WORDS[label], size=3, replace=False)))
    frame = pd.DataFrame(
        {
            "image": pd.Series(images, dtype=object),
            "text": pd.Series(texts, dtype=object),
        }
    )
    return frame, y


def _hog():
    return HOGExtractor(
        image_size=(16, 16), pixels_per_cell=(4, 4), cells_per_block=(2, 2)
    )


def _modalities():
    return [
        ("image", make_pipeline(_hog(), LogisticRegression()), "image"),
        ("text", make_pipeline(TfidfExtractor(), LogisticRegression()), "text"),
    ]


def _images(n=14, size=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return np.stack(
        [
            ((0.6 * xx * (0.5 + yy) + 0.3 * rng.random((size, size))) * 255).astype(
                np.uint8
            )
            for _ in range(n)
        ]
    )


def _clips(n=6):
    t = np.arange(4000) / 8000
    return [np.sin(2 * np.pi * (300 + 150 * i) * t) for i in range(n)]


def _early_fusion():
    X, y = _av()
    fuser = MultimodalFuser(
        [("image", _hog(), "image"), ("text", TfidfExtractor(), "text")]
    )
    model = make_pipeline(fuser, LogisticRegression()).fit(X, y)
    return model, X, ["predict_proba", "predict", lambda m, X: m[0].transform(X)]


def _late():
    X, y = _av()
    return LateFusionClassifier(_modalities()).fit(X, y), X, ["predict_proba"]


def _stacking():
    X, y = _av()
    model = ModalityStackingClassifier(_modalities(), cv=3).fit(X, y)
    return model, X, ["predict_proba", "predict"]


def _hog_extractor():
    X = _images(6)
    return _hog().fit(X), X, ["transform"]


def _sift():
    rng = np.random.default_rng(0)
    X = [rng.random((48, 64)) for _ in range(6)]
    model = SIFTBoVWExtractor(n_words=8, pyramid_levels=(1, 2), random_state=0)
    return model.fit(X), X, ["transform"]


def _tfidf():
    X, _ = _av()
    return TfidfExtractor().fit(X["text"]), X["text"], ["transform"]


def _mfcc():
    X = _clips()
    model = MFCCExtractor(sr=8000, n_fft=256, hop_length=64, n_mels=32, n_mfcc=12)
    return model.fit(X), X, ["transform"]


def _imblearn_sampler():
    X, y = _images(14), np.array([0] * 10 + [1] * 4)
    steps = [("hog", _hog()), ("under", RandomUnderSampler(random_state=0))]
    model = ImbPipeline([*steps, ("clf", LogisticRegression())]).fit(X, y)
    return model, X, ["predict_proba", "predict"]


def _imblearn_augmenter():
    X, y = _images(14), np.array([0] * 10 + [1] * 4)
    steps = [("aug", ImageAugmenter(random_state=0)), ("hog", _hog())]
    model = ImbPipeline([*steps, ("clf", LogisticRegression())]).fit(X, y)
    return model, X, ["predict_proba", "predict"]


def _outputs(model, X, methods):
    out = []
    for method in methods:
        value = method(model, X) if callable(method) else getattr(model, method)(X)
        out.append(value.toarray() if hasattr(value, "toarray") else np.asarray(value))
    return out


@pytest.mark.parametrize(
    "build",
    [
        _early_fusion,
        _late,
        _stacking,
        _hog_extractor,
        _sift,
        _tfidf,
        _mfcc,
        _imblearn_sampler,
        _imblearn_augmenter,
    ],
)
def test_round_trip_gives_identical_outputs_without_trusted(build, tmp_path):
    model, X, methods = build()
    path = mmfeat.save(model, tmp_path / "model.skops")
    # the file holds types skops alone does not trust: mmfeat's default does
    assert sio.get_untrusted_types(file=path)
    loaded = mmfeat.load(path)
    assert type(loaded) is type(model)
    for before, after in zip(_outputs(model, X, methods), _outputs(loaded, X, methods)):
        np.testing.assert_array_equal(after, before)
    cls = type(model)
    assert (
        mmfeat.model_metadata(path)["model_class"]
        == f"{cls.__module__}.{cls.__qualname__}"
    )


def test_saved_file_is_a_plain_skops_file_with_the_metadata_member(tmp_path):
    model, X, _ = _late()
    path = mmfeat.save(model, str(tmp_path / "late.skops"))
    assert path == tmp_path / "late.skops"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "schema.json" in names and METADATA_MEMBER in names
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_unsavable_attribute_is_named_and_old_file_survives(tmp_path):
    path = tmp_path / "model.skops"
    good = StandardScaler().fit([[0.0], [2.0]])
    mmfeat.save(good, path)
    bad = make_pipeline(StandardScaler().fit([[0.0], [4.0]]))
    bad[0].extra_ = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(
        ParameterError, match=r"model\.steps\[0\]\[1\]\.extra_ is a pandas"
    ):
        mmfeat.save(bad, path)
    # atomic: the old file is intact and no temporary file is left behind
    assert sorted(os.listdir(tmp_path)) == ["model.skops"]
    np.testing.assert_array_equal(mmfeat.load(path).mean_, [1.0])


def test_save_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "model.skops"
    mmfeat.save(StandardScaler().fit([[0.0], [2.0]]), path)
    mmfeat.save(StandardScaler().fit([[0.0], [4.0]]), path)
    assert sorted(os.listdir(tmp_path)) == ["model.skops"]
    np.testing.assert_array_equal(mmfeat.load(path).mean_, [2.0])


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib", ".PKL"])
def test_save_refuses_pickle_suffixes(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    with pytest.raises(ParameterError, match=r"skops.*'\.skops'"):
        mmfeat.save(StandardScaler(), path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_save_refuses_a_folder_or_a_missing_folder(tmp_path):
    with pytest.raises(ParameterError, match="is a folder"):
        mmfeat.save(StandardScaler(), tmp_path)
    with pytest.raises(ParameterError, match="does not exist"):
        mmfeat.save(StandardScaler(), tmp_path / "nope" / "m.skops")


# ---------------------------------------------------------------- crafted files


def _schema(obj):
    """The schema skops writes for ``obj`` (a node tree to build files from)."""
    with zipfile.ZipFile(io.BytesIO(sio.dumps(obj))) as archive:
        return json.loads(archive.read("schema.json"))


def _craft(path, module, name, loader, content=None):
    """A skops file whose root is ``module.name`` built by ``loader``."""
    protocol = _schema(()).get("protocol")
    root = {"__class__": name, "__module__": module, "__loader__": loader}
    if content is not None:
        root["content"] = _schema(content)
    root.update(protocol=protocol, _skops_version=skops.__version__)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(root))
    return path


def test_file_calling_builtins_eval_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('os').mkdir({str(marker)!r})"
    path = _craft(
        tmp_path / "m.skops", "builtins", "eval", "ConstructorFromReduceNode", (code,)
    )
    with pytest.raises(UntrustedModelError, match=r"builtins\.eval") as err:
        mmfeat.load(path)
    assert str(path) in str(err.value) and "trusted=['builtins.eval']" in str(err.value)
    assert err.value.types == ("builtins.eval",)  # for code that asks the user
    assert pickle.loads(pickle.dumps(err.value)).types == ("builtins.eval",)
    assert not marker.exists()
    # control: trusted, the same file runs the code
    sio.load(path, trusted=["builtins.eval"])
    assert marker.exists()


def test_function_transformer_of_os_system_is_refused(tmp_path):
    path = mmfeat.save(FunctionTransformer(os.system), tmp_path / "m.skops")
    with pytest.raises(UntrustedModelError) as err:
        mmfeat.load(path)
    message = str(err.value)
    assert f"{os.system.__module__}.system" in message
    assert "skops.io.get_untrusted_types" in message and "mmfeat.load(" in message


def test_numpy_functions_are_not_trusted_by_prefix(tmp_path):
    path = mmfeat.save(FunctionTransformer(np.load), tmp_path / "m.skops")
    with pytest.raises(UntrustedModelError, match=r"numpy\.load"):
        mmfeat.load(path)
    loaded = mmfeat.load(path, trusted=["numpy.load"])
    assert loaded.func is np.load


def test_numpy_class_called_with_file_arguments_is_refused(tmp_path):
    target = tmp_path / "created"
    args = (str(target), "uint8", "w+", 0, 4)
    path = _craft(
        tmp_path / "m.skops", "numpy", "memmap", "ConstructorFromReduceNode", args
    )
    with pytest.raises(UntrustedModelError, match=r"numpy\.memmap"):
        mmfeat.load(path)
    assert not target.exists()
    # control: numpy.memmap is a class, and trusting it creates the file
    sio.load(path, trusted=["numpy.memmap"])
    assert target.exists()


def test_numpy_class_whose_del_deletes_a_folder_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    state = {"_istmpdest": True, "_destpath": str(victim)}
    path = _craft(
        tmp_path / "m.skops", "numpy.lib._datasource", "DataSource", "ObjectNode", state
    )
    with pytest.raises(
        UntrustedModelError, match=r"numpy\.lib\._datasource\.DataSource"
    ):
        mmfeat.load(path)
    gc.collect()
    assert victim.is_dir()
    # control: trusted, the object deletes the folder when it is collected
    sio.load(path, trusted=["numpy.lib._datasource.DataSource"])
    gc.collect()
    assert not victim.exists()


class _Plain:
    """An mmfeat-like class rebuilt from its attributes alone."""


class _Hook:
    """An mmfeat-like class whose ``__setstate__`` acts on the state."""

    def __setstate__(self, state):
        os.mkdir(state["marker"])
        self.__dict__.update(state)


def test_mmfeat_class_with_custom_setstate_is_not_trusted_by_default(
    tmp_path, monkeypatch
):
    import mmfeat.fusion._fuser as host

    for cls in (_Plain, _Hook):
        monkeypatch.setattr(cls, "__module__", host.__name__)
        monkeypatch.setattr(host, cls.__name__, cls, raising=False)
    plain = _Plain()
    plain.value = 3
    assert mmfeat.load(mmfeat.save(plain, tmp_path / "plain.skops")).value == 3

    marker = tmp_path / "ran"
    hook = _Hook()
    hook.__dict__["marker"] = str(marker)
    path = mmfeat.save(hook, tmp_path / "hook.skops")
    name = f"{host.__name__}._Hook"
    with pytest.raises(UntrustedModelError, match=name):
        mmfeat.load(path)
    assert not marker.exists()
    mmfeat.load(path, trusted=[name])  # listed by the user: its code runs
    assert marker.exists()


def test_trusted_list_loads_a_refused_file_and_trusted_true_is_refused(tmp_path):
    transformer = FunctionTransformer(np.load)
    path = mmfeat.save(transformer, tmp_path / "m.skops")
    with pytest.raises(
        ParameterError, match=r"trusted=True.*not supported.*\['numpy\.load'\]"
    ):
        mmfeat.load(path, trusted=True)
    with pytest.raises(ParameterError, match="list of type names"):
        mmfeat.load(path, trusted="numpy.load")
    with pytest.raises(ParameterError, match="as strings"):
        mmfeat.load(path, trusted=[np.load])
    with pytest.raises(ParameterError, match="allow_pickle must be True or False"):
        mmfeat.load(path, allow_pickle="yes")
    # a partial list is still refused, naming only what is missing
    with pytest.raises(UntrustedModelError, match=r"1 type\(s\).*numpy\.load"):
        mmfeat.load(path, trusted=["numpy.save"])
    assert mmfeat.load(path, trusted=("numpy.load",)).func is np.load


# ---------------------------------------------------------------- pickle files


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.skops"])
def test_pickle_file_is_refused_and_nothing_runs(tmp_path, name):
    marker = tmp_path / "ran"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(UntrustedModelError) as err:
        mmfeat.load(path)
    message = str(err.value)
    assert not marker.exists()
    assert str(path) in message and "allow_pickle=True" in message
    assert "arbitrary code" in message and "created yourself" in message
    assert "mmfeat.save(mmfeat.load(" in message
    # control: with allow_pickle=True the file runs its code
    mmfeat.load(path, allow_pickle=True)
    assert marker.is_dir()


@pytest.mark.parametrize("compress", [0, 3])
def test_allow_pickle_loads_a_joblib_model_and_it_converts(tmp_path, compress):
    model, X, _ = _late()
    path = tmp_path / "late.joblib"
    joblib.dump(model, path, compress=compress)
    loaded = mmfeat.load(path, allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    converted = mmfeat.save(loaded, tmp_path / "late.skops")
    np.testing.assert_array_equal(
        mmfeat.load(converted).predict_proba(X), model.predict_proba(X)
    )


def test_allow_pickle_on_garbage_is_an_input_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a model")
    with pytest.raises(UntrustedModelError, match="allow_pickle"):
        mmfeat.load(path)
    with pytest.raises(InputError, match="pickle/joblib") as err:
        mmfeat.load(path, allow_pickle=True)
    assert err.value.source == str(path)


# ---------------------------------------------------------------- metadata + versions


def _rewrite_metadata(path, **changes):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members[METADATA_MEMBER])
    meta.update(changes)
    members[METADATA_MEMBER] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _major_minor(version):
    return [int(x) for x in version.split(".")[:2]]


def test_model_metadata_records_the_running_versions(tmp_path):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    path = mmfeat.save(_hog(), tmp_path / "hog.skops")
    meta = mmfeat.model_metadata(path)
    assert meta["mmfeat"] == mmfeat.__version__
    assert meta["scikit-learn"] == sklearn.__version__
    assert meta["numpy"] == np.__version__
    assert meta["scipy"] == scipy.__version__
    assert meta["skops"] == skops.__version__
    assert meta["python"] == ".".join(map(str, sys.version_info[:3]))
    assert meta["model_class"] == "mmfeat.features.image._hog.HOGExtractor"
    saved_at = datetime.fromisoformat(meta["saved_at"])
    assert saved_at.utcoffset() == timedelta(0)
    assert before <= saved_at <= datetime.now(timezone.utc)


def test_model_metadata_is_empty_for_a_plain_skops_file(tmp_path):
    path = tmp_path / "plain.skops"
    sio.dump(StandardScaler(), path)
    assert mmfeat.model_metadata(path) == {}
    assert isinstance(mmfeat.load(path), StandardScaler)  # and no version warning


def _old(key):
    running = {
        "mmfeat": mmfeat.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }[key]
    major, minor = _major_minor(running)
    if key == "numpy":
        return f"{major - 1}.26.4" if major > 1 else f"{major + 1}.0.0"
    return f"{major}.{minor - 1}.0" if minor > 0 else f"{major - 1}.9.0"


@pytest.mark.parametrize("key", ["scikit-learn", "numpy", "mmfeat"])
def test_version_mismatch_warns_with_both_versions(tmp_path, key):
    running = {
        "mmfeat": mmfeat.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }[key]
    path = mmfeat.save(StandardScaler().fit([[0.0], [2.0]]), tmp_path / "m.skops")
    old = _old(key)
    _rewrite_metadata(path, **{key: old})
    with pytest.warns(ModelVersionWarning) as record:
        model = mmfeat.load(path)
    assert len(record) == 1
    message = str(record[0].message)
    assert f"{key} {old} (running {running})" in message and str(path) in message
    assert record[0].filename == __file__  # points at the caller of load
    np.testing.assert_array_equal(model.mean_, [1.0])


def test_patch_or_numpy_minor_difference_does_not_warn(tmp_path):
    path = mmfeat.save(StandardScaler(), tmp_path / "m.skops")
    sk_major, sk_minor = _major_minor(sklearn.__version__)
    mm_major, mm_minor = _major_minor(mmfeat.__version__)
    _rewrite_metadata(
        path,
        **{
            "scikit-learn": f"{sk_major}.{sk_minor}.999",
            "mmfeat": f"{mm_major}.{mm_minor}.999",
            "numpy": f"{np.__version__.split('.')[0]}.999.0",
            "scipy": "0.1.0",
        },
    )
    assert isinstance(mmfeat.load(path), StandardScaler)  # warnings are errors


# ---------------------------------------------------------------- bad files


def test_missing_file_and_folder_are_input_errors(tmp_path):
    missing = tmp_path / "missing.skops"
    for call in (mmfeat.load, mmfeat.model_metadata):
        with pytest.raises(InputError, match="no such file") as err:
            call(missing)
        assert err.value.source == str(missing) and str(missing) in str(err.value)
        with pytest.raises(InputError, match="is a folder"):
            call(tmp_path)


def test_corrupt_skops_file_is_an_input_error(tmp_path):
    whole = mmfeat.save(_hog(), tmp_path / "whole.skops").read_bytes()
    path = tmp_path / "cut.skops"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="corrupt zip") as err:
        mmfeat.load(path)
    assert err.value.source == str(path)
    with pytest.raises(InputError, match="not a skops file") as err:
        mmfeat.model_metadata(path)
    assert err.value.source == str(path)


def test_non_zip_empty_and_schemaless_files_are_input_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a zip archive") as err:
        mmfeat.model_metadata(text)
    assert str(text) in str(err.value)
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        mmfeat.load(empty)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("data.pkl", b"x")
    with pytest.raises(InputError, match="without schema.json"):
        mmfeat.load(other)


def test_invalid_schema_is_an_input_error(tmp_path):
    path = tmp_path / "bad.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{not json")
    with pytest.raises(InputError, match="not a valid skops file") as err:
        mmfeat.load(path)
    assert err.value.source == str(path)
