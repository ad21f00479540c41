import numpy as np
import pytest

from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.audio import BoAWExtractor, MFCCExtractor

FRONT = dict(sr=8000, n_fft=256, hop_length=64, n_mels=32, n_mfcc=12)


@pytest.fixture
def clips(rng):
    t = np.arange(4000) / 8000
    return [
        np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        for i in range(6)
    ]


def test_boaw_hard_histograms_match_naive_kmeans_counts(clips):
    boaw = BoAWExtractor(
        frontend=MFCCExtractor(**FRONT),
        n_words=5,
        power_norm=False,
        l2_norm=False,
        random_state=0,
    ).fit(clips)
    out = boaw.transform(clips)
    frames = MFCCExtractor(**FRONT, pooling=None).fit().transform(clips)
    for row, f in zip(out, frames):
        z = ((f - boaw.mean_) / boaw.scale_).astype(np.float32)
        d2 = ((z[:, None, :] - boaw.codebook_[None]) ** 2).sum(-1)
        ref = np.bincount(d2.argmin(1), minlength=5) / len(f)
        np.testing.assert_allclose(row, ref, atol=1e-12)


def test_boaw_temporal_pyramid_separates_halves():
    t = np.arange(4000) / 8000
    low, high = np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 2500 * t)
    clip = np.concatenate([low, high])
    boaw = BoAWExtractor(
        frontend=MFCCExtractor(**FRONT),
        n_words=2,
        pyramid_levels=(1, 2),
        power_norm=False,
        l2_norm=False,
        random_state=0,
    ).fit([low, high, clip])
    row = boaw.transform([clip])[0]
    first, second = row[2:4], row[4:6]
    assert first.argmax() != second.argmax()  # each half has its own word
    np.testing.assert_allclose(row[:2].sum(), 1.0)
    np.testing.assert_allclose(first.sum() + second.sum(), 1.0)


def test_boaw_soft_and_missing_rows(clips):
    boaw = BoAWExtractor(
        frontend=MFCCExtractor(**FRONT, on_error="missing"),
        n_words=4,
        encoding="soft",
        random_state=0,
    ).fit(clips)
    assert boaw.bandwidth_ > 0
    with collect_item_errors() as errors:
        out = boaw.transform([clips[0], None, "no/such.wav"])
    np.testing.assert_allclose(np.linalg.norm(out[0]), 1.0)
    assert np.isnan(out[1:]).all()
    assert [e.row for e in errors] == [2]


def test_boaw_errors_are_clear(clips):
    with pytest.raises(ParameterError, match="fewer than n_words=5000"):
        BoAWExtractor(frontend=MFCCExtractor(**FRONT), n_words=5000).fit(clips)
    boaw = BoAWExtractor(frontend=MFCCExtractor(**FRONT), n_words=3).fit(clips)
    with pytest.raises(InputError, match=r"row 1 \(no/such\.wav\)"):
        boaw.transform([clips[0], "no/such.wav"])


def test_boaw_bad_parameters_are_parameter_errors(clips):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ParameterError, match="frontend must give frames"):
        BoAWExtractor(frontend=StandardScaler()).fit(clips)
    # the frontend's own parameters are validated too (nested validation)
    with pytest.raises(ParameterError, match="'n_mfcc' parameter of MFCCExtractor"):
        BoAWExtractor(frontend=MFCCExtractor(**dict(FRONT, n_mfcc=0))).fit(clips)
    with pytest.raises(ParameterError, match="'encoding' parameter of BoAWExtractor"):
        BoAWExtractor(frontend=MFCCExtractor(**FRONT), encoding="vlad").fit(clips)
