"""MFCCExtractor's framing: librosa's defaults, and ``n_fft="auto"`` for
speech (32 ms windows, 10 ms hop; issue 14, part 5)."""

import pickle

import librosa
import numpy as np
import pytest

import mmfeat
from mmfeat.datasets import load_fsdd
from mmfeat.exceptions import ModelStateError, ParameterError
from mmfeat.features.audio import MFCCExtractor
from mmfeat.io import read_audio


@pytest.fixture(scope="module")
def clips(data_home):
    paths = load_fsdd(data_home=data_home).frame["path"].tolist()[::300]  # 10
    return [read_audio(p)[0].astype(np.float64) for p in paths]


@pytest.mark.parametrize(
    "sr, n_fft, hop",
    [
        (8000, 256, 80),
        (11025, 256, 110),
        (16000, 512, 160),
        (22050, 512, 220),
        (24000, 1024, 240),  # 768 samples: 2**9.58, nearer 1024 on a log scale
        (32000, 1024, 320),
        (44100, 1024, 441),
        (48000, 2048, 480),
    ],
)
def test_mfcc_auto_window_is_32ms_with_a_10ms_hop(sr, n_fft, hop):
    ext = MFCCExtractor(sr=sr, n_fft="auto", n_mels=40).fit()
    assert (ext.n_fft_, ext.win_length_, ext.hop_length_) == (n_fft, n_fft, hop)
    assert ext.window_.shape == (n_fft,)
    assert ext.mel_basis_.shape == (40, n_fft // 2 + 1)
    assert 2 ** np.round(np.log2(0.032 * sr)) == n_fft


def test_mfcc_defaults_are_librosas(clips):
    ext = MFCCExtractor().fit()
    assert (ext.n_fft, ext.hop_length) == (2048, "auto")
    assert (ext.n_fft_, ext.win_length_, ext.hop_length_) == (2048, 2048, 512)
    # the default call, at the clips' rate, is librosa's default call
    ext = MFCCExtractor(sr=8000, pooling=None).fit()
    for clip, got in zip(clips, ext.transform(clips)):
        ref = librosa.feature.mfcc(y=clip, sr=8000)
        np.testing.assert_allclose(got.T, ref, rtol=1e-4, atol=1e-4)
    # an integer n_fft keeps librosa's 512-sample hop
    assert MFCCExtractor(n_fft=256).fit().hop_length_ == 512


def test_mfcc_auto_window_matches_librosa_with_the_same_framing(clips):
    ext = MFCCExtractor(sr=8000, n_fft="auto", n_mels=40, pooling=None).fit()
    for clip, got in zip(clips, ext.transform(clips)):
        ref = librosa.feature.mfcc(y=clip, sr=8000, n_fft=256, hop_length=80, n_mels=40)
        assert got.shape == (1 + clip.size // 80, 20)
        np.testing.assert_allclose(got.T, ref, rtol=1e-4, atol=1e-4)


def test_mfcc_auto_equals_the_integers_it_stands_for(clips):
    auto = MFCCExtractor(sr=8000, n_fft="auto", n_mels=40, deltas=2).fit()
    ints = MFCCExtractor(sr=8000, n_fft=256, hop_length=80, n_mels=40, deltas=2).fit()
    np.testing.assert_array_equal(auto.transform(clips), ints.transform(clips))
    np.testing.assert_array_equal(
        auto.get_feature_names_out(), ints.get_feature_names_out()
    )


@pytest.mark.parametrize(
    "params, framing",
    [
        ({"hop_length": 64}, (256, 256, 64)),  # an explicit hop is kept
        ({"hop_length": None}, (256, 256, 64)),  # None: win_length // 4
        ({"win_length": 200}, (256, 200, 80)),  # 25 ms windows, zero-padded
        ({"win_length": 200, "hop_length": None}, (256, 200, 50)),
    ],
)
def test_mfcc_auto_window_with_explicit_hop_or_win_length(params, framing):
    ext = MFCCExtractor(sr=8000, n_fft="auto", n_mels=40, **params).fit()
    assert (ext.n_fft_, ext.win_length_, ext.hop_length_) == framing
    assert np.count_nonzero(ext.window_) <= framing[1]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_fft": "speech"}, r"The 'n_fft' parameter of MFCCExtractor must be"),
        ({"n_fft": 1}, r"The 'n_fft' parameter of MFCCExtractor must be"),
        ({"hop_length": "10ms"}, r"The 'hop_length' parameter of MFCCExtractor"),
        ({"hop_length": 0}, r"The 'hop_length' parameter of MFCCExtractor"),
        (
            {"n_fft": "auto", "win_length": 400},
            r"win_length=400 must not exceed n_fft='auto' = 256 at sr=8000",
        ),
    ],
)
def test_mfcc_bad_framing_is_a_parameter_error(params, match):
    with pytest.raises(ParameterError, match=match):
        MFCCExtractor(**dict(dict(sr=8000, n_mels=40), **params)).fit()


def test_mfcc_auto_window_survives_pickle_and_mmfeat_save(clips, tmp_path):
    ext = MFCCExtractor(sr=8000, n_fft="auto", n_mels=40, deltas=1).fit()
    want = ext.transform(clips)
    mmfeat.save(ext, tmp_path / "mfcc.skops")
    for loaded in (
        pickle.loads(pickle.dumps(ext)),
        mmfeat.load(tmp_path / "mfcc.skops"),
    ):
        assert (loaded.n_fft_, loaded.win_length_, loaded.hop_length_) == (256, 256, 80)
        np.testing.assert_array_equal(loaded.transform(clips), want)


@pytest.mark.parametrize(
    "attr, value", [("n_fft_", 512), ("win_length_", 128), ("hop_length_", 64)]
)
def test_mfcc_resolved_framing_is_checked_on_load(attr, value):
    ext = MFCCExtractor(sr=8000, n_fft="auto", n_mels=40).fit()
    setattr(ext, attr, value)
    with pytest.raises(ModelStateError, match=f"{attr}={value}"):
        pickle.loads(pickle.dumps(ext))
