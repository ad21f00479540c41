"""AudioAugmenter (``mmfeat/preprocessing/_audio_augmenter.py``).

Noise at a measured SNR, gain, circular shift, reading files, a pipeline with
MFCCs, parameters.
"""

import numpy as np
import pytest
import soundfile as sf
from imblearn.pipeline import Pipeline
from sklearn.linear_model import LogisticRegression

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.audio import MFCCExtractor
from mmfeat.io import read_audio
from mmfeat.preprocessing import AudioAugmenter
from tests.preprocessing._helpers import make_clips

_AUDIO_OFF = dict(snr_db=None, max_shift=0.0, gain_db=None)


# --------------------------------------------------------------------------
# Audio transforms, one at a time
# --------------------------------------------------------------------------


@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_audio_augmenter_noise_at_requested_snr(rng, snr):
    sr = 16000
    t = np.arange(4 * sr) / sr
    clip = (
        0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 97 * t)
    ).astype(np.float32)
    aug = AudioAugmenter(
        sr=sr, n_copies=3, random_state=0, **dict(_AUDIO_OFF, snr_db=snr)
    )
    X_res, _ = aug.fit_resample([clip])
    signal = np.mean(clip.astype(float) ** 2)
    for out in X_res[1:]:
        noise = out.astype(float) - clip
        measured = 10 * np.log10(signal / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.5)
    # different copies get different noise
    assert not np.array_equal(X_res[1], X_res[2])


def test_audio_augmenter_snr_range_and_silence(rng):
    clip = make_clips(rng, 1, length=16000)[0]
    aug = AudioAugmenter(
        sr=8000, n_copies=6, random_state=0, **dict(_AUDIO_OFF, snr_db=(10, 30))
    )
    X_res, _ = aug.fit_resample([clip])
    snrs = aug.augment_params_["snr_db"]
    assert np.all((snrs >= 10) & (snrs <= 30)) and np.ptp(snrs) > 1
    for out, snr in zip(X_res[1:], snrs):
        measured = 10 * np.log10(
            np.mean(clip.astype(float) ** 2) / np.mean((out - clip) ** 2)
        )
        assert measured == pytest.approx(snr, abs=0.5)
    silent = np.zeros(1000, dtype=np.float32)
    out, _ = AudioAugmenter(sr=8000, n_copies=1, random_state=0).fit_resample([silent])
    np.testing.assert_array_equal(out[1], silent)


def test_audio_augmenter_gain_scales_by_db(rng):
    clip = make_clips(rng, 1)[0]
    out, _ = AudioAugmenter(
        sr=8000, n_copies=1, **dict(_AUDIO_OFF, gain_db=-6.0)
    ).fit_resample([clip])
    np.testing.assert_allclose(out[1], clip * 10 ** (-6 / 20), rtol=1e-6)
    aug = AudioAugmenter(
        sr=8000, n_copies=5, random_state=0, **dict(_AUDIO_OFF, gain_db=(-6, 6))
    )
    X_res, _ = aug.fit_resample([clip])
    gains = aug.augment_params_["gain_db"]
    assert np.all(np.abs(gains) <= 6) and np.ptp(gains) > 1
    for out, g in zip(X_res[1:], gains):
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, clip * 10 ** (g / 20), rtol=1e-5, atol=1e-7)


def test_audio_augmenter_shift_moves_the_signal_circularly():
    clip = np.zeros(4000, dtype=np.float32)
    clip[1000] = 1.0
    clip[3990] = -0.5  # near the end: wraps around
    aug = AudioAugmenter(
        sr=8000, n_copies=8, random_state=0, **dict(_AUDIO_OFF, max_shift=0.25)
    )
    X_res, _ = aug.fit_resample([clip])
    moved = 0
    for out in X_res[1:]:
        (peak,) = np.flatnonzero(out == 1.0)
        k = peak - 1000
        assert abs(k) <= 1000
        moved += k != 0
        np.testing.assert_array_equal(out, np.roll(clip, k))
        assert np.sum(out**2) == pytest.approx(np.sum(clip**2))
    assert moved >= 6


def test_audio_augmenter_all_off_and_reads_files(tmp_path, rng):
    clip = make_clips(rng, 1, length=4000)[0]
    path = tmp_path / "a.wav"
    sf.write(path, clip, 8000, subtype="FLOAT")
    aug = AudioAugmenter(sr=16000, n_copies=1, **_AUDIO_OFF)
    X_res, _ = aug.fit_resample([str(path), clip])
    assert X_res[0] == str(path)
    expected = read_audio(str(path), sr=16000)[0]
    assert X_res[2].shape == (8000,)  # resampled to sr
    np.testing.assert_array_equal(X_res[2], expected)
    np.testing.assert_array_equal(X_res[3], clip)  # arrays are taken at sr
    with pytest.raises(InputError, match=r"row 1 \(.*gone\.wav\)"):
        AudioAugmenter(n_copies=1).fit_resample([clip, str(tmp_path / "gone.wav")])


# --------------------------------------------------------------------------
# Pipelines, clone, pickle, parameters
# --------------------------------------------------------------------------


def test_audio_augmenter_in_pipeline_with_mfcc(rng):
    clips = make_clips(rng, 8)
    y = np.array([0] * 6 + [1] * 2)
    pipe = Pipeline(
        [
            ("aug", AudioAugmenter(sr=8000, random_state=0)),
            ("mfcc", MFCCExtractor(sr=8000, n_fft=256, n_mels=32, n_mfcc=12)),
            ("clf", LogisticRegression()),
        ]
    )
    pipe.fit(clips, y)
    assert pipe.named_steps["clf"].n_features_in_ > 0
    assert pipe.predict(clips).shape == (8,)


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"snr_db": (30, 10)},
            r"snr_db must be finite with low <= high; got \(30, 10\)",
        ),
        ({"snr_db": "loud"}, "snr_db"),
        ({"gain_db": (1, 2, 3)}, r"gain_db must be None, a number or a \(low, high\)"),
        ({"sr": 0}, "sr"),
        ({"max_shift": -0.1}, "max_shift"),
    ],
)
def test_audio_augmenter_bad_params(rng, params, match):
    with pytest.raises(ParameterError, match=match):
        AudioAugmenter(**params).fit(make_clips(rng, 2), [0, 1])
