import io

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import savgol_filter

from mmfeat import collect_item_errors
from mmfeat.datasets import load_fsdd
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.audio import MFCCExtractor, mel_filterbank
from mmfeat.io import read_audio

BASE = dict(sr=8000, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40)
VARIANTS = [
    {},
    {"htk": True, "fmin": 60.0, "fmax": 3800.0, "lifter": 22, "mel_norm": None},
    {"window": "hamming", "win_length": 400, "n_fft": 512, "hop_length": 160},
    {"center": False, "mel_norm": 2.0, "top_db": None},
    {"dct_type": 3, "n_mfcc": 20, "power": 1.0},
    # not a power of two: SciPy's FFT instead of the fused kernel's own
    {"n_fft": 400, "hop_length": 160, "power": 1.5},
]


@pytest.fixture(scope="module")
def fsdd_clips(data_home):
    paths = load_fsdd(data_home=data_home).frame["path"].tolist()[::30]  # 100 clips
    return [read_audio(p)[0].astype(np.float64) for p in paths]


def _librosa_mfcc(clip, p):
    kw = dict(BASE, **p)
    mel_norm = kw.pop("mel_norm", "slaney")
    top_db = kw.pop("top_db", 80.0)
    lifter = kw.pop("lifter", 0)
    dct_type = kw.pop("dct_type", 2)
    n_mfcc = kw.pop("n_mfcc")
    power = kw.pop("power", 2.0)
    sr = kw.pop("sr")
    S = librosa.feature.melspectrogram(
        y=clip, sr=sr, power=power, norm=mel_norm, dtype=np.float64, **kw
    )
    return librosa.feature.mfcc(
        S=librosa.power_to_db(S, top_db=top_db),
        n_mfcc=n_mfcc,
        dct_type=dct_type,
        lifter=lifter,
    )


@pytest.mark.parametrize("params", VARIANTS, ids=[str(v) for v in VARIANTS])
def test_mfcc_matches_librosa_per_clip_on_fsdd(fsdd_clips, params):
    ext = MFCCExtractor(**dict(BASE, **params), pooling=None).fit()
    frames = ext.transform(fsdd_clips)
    for clip, got in zip(fsdd_clips, frames):
        ref = _librosa_mfcc(clip, params)
        np.testing.assert_allclose(got.T, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("power", [2.0, 1.0])
@pytest.mark.parametrize("n_fft", [8, 16, 32, 64, 256, 512])
def test_fused_fft_kernel_matches_scipy_fft_path(rng, n_fft, power):
    # the own FFT (vectorised across frames, frames never stored) against
    # the frames + scipy.fft.rfft + mel dB path, on clips shorter than a
    # frame (more of them than a block has frames: blocks of clip edges
    # only), a few frames long (blocks mixing clip edges) and long; sizes
    # with an odd and an even count of radix-2 stages
    from mmfeat.features.audio._mfcc_kernels import _LANES, fft_tables

    ext = MFCCExtractor(
        sr=8000,
        n_fft=n_fft,
        hop_length=max(1, n_fft // 4),
        n_mels=min(40, n_fft // 4),
        n_mfcc=min(13, n_fft // 4),
    ).fit()
    clips = [rng.standard_normal(n) for n in (3, n_fft - 1, 3 * n_fft + 7, 40 * n_fft)]
    clips.insert(2, np.zeros(2 * n_fft))  # silence: the amin floor
    clips = [rng.standard_normal(3) for _ in range(_LANES + 6)] + clips
    # and a batch with fewer samples in all than one frame (nothing to load
    # from but the padded edges)
    for batch in (clips, clips[:2]):
        _check_fused_kernel(ext, batch, n_fft, power)
    assert fft_tables(n_fft + 2) is None and fft_tables(4) is None


def _check_fused_kernel(ext, clips, n_fft, power):
    from mmfeat.features.audio._mfcc_kernels import (
        _frame,
        _power_mel_db,
        _stft_mel_db,
        fft_tables,
    )

    offsets = np.concatenate([[0], np.cumsum([c.size for c in clips])])
    fo = np.concatenate([[0], np.cumsum([ext._frames_of(c.size) for c in clips])])
    samples = np.concatenate(clips)
    mel = ext.mel_basis_
    lo = np.zeros(len(mel), np.int64)
    hi = np.full(len(mel), mel.shape[1], np.int64)
    pad = n_fft // 2
    frames = np.empty((fo[-1], n_fft))
    _frame(samples, offsets, n_fft, ext.hop_length_, pad, ext.window_, fo, frames)
    want = np.empty((fo[-1], len(mel)))
    want_top = np.empty(fo[-1])
    spec = np.fft.rfft(frames, axis=1)
    _power_mel_db(spec, power, mel, lo, hi, 1e-10, 0.0, want, want_top)
    got = np.empty_like(want)
    got_top = np.empty_like(want_top)
    args = (samples, offsets, n_fft, ext.hop_length_, pad, ext.window_, fo)
    _stft_mel_db(
        *args, *fft_tables(n_fft), power, mel, lo, hi, 1e-10, 0.0, got, got_top
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got_top, want_top, rtol=0, atol=1e-9)


def test_vectorised_log10_matches_numpy(rng):
    from mmfeat.features.audio._mfcc_kernels import _log10_into

    x = np.concatenate(
        [
            10 ** rng.uniform(-12, 300, 20000),
            rng.uniform(0.5, 2.0, 5000),  # around the mantissa reduction
            [1e-10, 1.0, 2.0, 0.5, np.sqrt(2), np.nextafter(np.sqrt(2), 3)],
            [1.7976931348623157e308, 2.2250738585072014e-308],
            # never reached from the kernel (floored at amin): libm's answers
            [np.inf, 0.0, 5e-324, np.nan],
        ]
    )
    with np.errstate(divide="ignore"):
        want = np.log10(np.where(np.isnan(x), 1.0, x))
    want[np.isnan(x)] = np.nan
    got = _log10_into(x.copy(), np.empty_like(x), np.empty(len(x), np.int64))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-15, atol=1e-15)
    assert np.isposinf(got[-4]) and np.isneginf(got[-3]) and np.isnan(got[-1])
    np.testing.assert_allclose(got[-2], np.log10(5e-324))


def test_mfcc_default_call_matches_librosa_mfcc(fsdd_clips):
    clip = fsdd_clips[0]
    ext = MFCCExtractor(sr=8000, n_fft=256, pooling=None, n_mels=64).fit()
    ref = librosa.feature.mfcc(y=clip, sr=8000, n_fft=256, n_mels=64)
    np.testing.assert_allclose(ext.transform([clip])[0].T, ref, rtol=1e-4, atol=1e-4)


def test_mfcc_deltas_match_librosa_delta(fsdd_clips):
    ext = MFCCExtractor(**BASE, deltas=2, pooling=None).fit()
    for clip, got in zip(fsdd_clips[:30], ext.transform(fsdd_clips[:30])):
        ref = librosa.feature.mfcc(y=clip, **BASE)
        scale = np.abs(ref).max()
        for order in (1, 2):
            d = librosa.feature.delta(ref, width=9, order=order)
            cols = slice(13 * order, 13 * (order + 1))
            np.testing.assert_allclose(got[:, cols].T, d, rtol=1e-4, atol=1e-6 * scale)


def test_mfcc_batch_equals_per_clip_calls(fsdd_clips):
    # librosa's top_db floor uses the max of the whole array it gets; mmfeat's
    # is per clip, so one batch equals one call per clip
    ext = MFCCExtractor(**BASE, deltas=1).fit()
    batch = ext.transform(fsdd_clips[:20])
    single = np.vstack([ext.transform([c]) for c in fsdd_clips[:20]])
    np.testing.assert_allclose(batch, single, rtol=1e-10, atol=1e-10)  # BLAS order


def _assert_deltas_are_savgol(frames, width):
    """Columns 13:26 and 26:39 are SciPy's Savitzky-Golay of columns 0:13."""
    coef = frames[:, :13]
    for order in (1, 2):
        ref = savgol_filter(
            coef, width, polyorder=order, deriv=order, mode="interp", axis=0
        )
        np.testing.assert_allclose(
            frames[:, 13 * order : 13 * (order + 1)], ref, atol=1e-9
        )


@pytest.mark.parametrize("cmvn", [None, "meanvar"])
def test_mfcc_long_clip_deltas_match_savgol_across_frame_runs(rng, cmvn):
    # 700 frames: the delta kernel splits a clip into runs of 256 frames;
    # every run boundary and both edges must equal scipy's Savitzky-Golay
    clips = [rng.standard_normal(699 * 128), rng.standard_normal(40 * 128)]
    ext = MFCCExtractor(**BASE, deltas=2, pooling=None).fit()
    got = ext.transform(clips)
    normed = MFCCExtractor(**BASE, deltas=2, cmvn=cmvn, pooling=None).fit()
    for g, h in zip(got, normed.transform(clips)):
        _assert_deltas_are_savgol(g, 9)
        if cmvn == "meanvar":
            ref = (g - g.mean(0)) / g.std(0)
            np.testing.assert_allclose(h, ref, atol=1e-9)
        else:
            np.testing.assert_array_equal(h, g)
    assert got[0].shape == (700, 39)


def test_mfcc_short_clips_use_narrower_delta_windows(rng):
    clip = rng.standard_normal(4 * 128)  # 5 frames with center=True
    ext = MFCCExtractor(**BASE, deltas=2, pooling=None).fit()
    got = ext.transform([clip])[0]
    assert got.shape == (5, 39)
    _assert_deltas_are_savgol(got, 5)
    tiny = ext.transform([rng.standard_normal(100)])[0]  # one frame
    assert tiny.shape == (1, 39) and np.all(tiny[:, 13:] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mfcc_pooling_statistics_match_numpy(fsdd_clips, dtype):
    clips = [c.astype(dtype) for c in fsdd_clips[:10]]
    pooling = ("mean", "std", "min", "max", "p10", 75)
    pooled = MFCCExtractor(**BASE, deltas=1, pooling=pooling).fit().transform(clips)
    frames = MFCCExtractor(**BASE, deltas=1, pooling=None).fit().transform(clips)
    for row, f in zip(pooled, frames):
        ref = np.concatenate(
            [
                f.mean(0),
                f.std(0),
                f.min(0),
                f.max(0),
                np.percentile(f, 10, axis=0),
                np.percentile(f, 75, axis=0),
            ]
        )
        np.testing.assert_allclose(row, ref, rtol=1e-10, atol=1e-10)


def test_mfcc_cmvn_normalises_each_clip(fsdd_clips):
    frames = MFCCExtractor(**BASE, deltas=2, cmvn="meanvar", pooling=None).fit()
    for f in frames.transform(fsdd_clips[:5]):
        np.testing.assert_allclose(f.mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(f.std(0), 1, atol=1e-9)
    means = MFCCExtractor(**BASE, cmvn="mean", pooling=None).fit()
    f = means.transform(fsdd_clips[:1])[0]
    np.testing.assert_allclose(f.mean(0), 0, atol=1e-9)
    assert f.std(0).max() > 1  # variance kept


def test_mfcc_silent_clip_is_constant_with_zero_deltas():
    out = (
        MFCCExtractor(**BASE, deltas=2, pooling=None).fit().transform([np.zeros(4000)])
    )
    f = out[0]
    assert np.isfinite(f).all()
    np.testing.assert_allclose(
        f[:, :13], np.broadcast_to(f[:1, :13], (len(f), 13)), atol=1e-9
    )
    np.testing.assert_allclose(f[:, 13:], 0, atol=1e-9)
    assert f[0, 0] == pytest.approx(-100 * np.sqrt(40))  # -100 dB in every band


def test_mfcc_bad_clips_named_and_kept_as_missing_rows(tmp_path):
    ext = MFCCExtractor(**BASE, center=False).fit()
    nan_clip = np.ones(2000)
    nan_clip[5] = np.nan
    with pytest.raises(InputError, match=r"row 1 \(array\): clip has 300 samples"):
        ext.transform([np.ones(2000), np.ones(300)])
    ext = MFCCExtractor(**BASE, on_error="missing").fit()
    with collect_item_errors() as errors:
        out = ext.transform([np.ones(2000), nan_clip, None, str(tmp_path / "gone.wav")])
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()
    assert [e.row for e in errors] == [1, 3]
    assert "NaN" in errors[0].reason


def test_mfcc_files_at_other_rates_are_resampled():
    t = np.arange(16000) / 16000
    tone16 = 0.5 * np.sin(2 * np.pi * 440 * t)
    buf = io.BytesIO()
    sf.write(buf, tone16, 16000, format="WAV", subtype="FLOAT")
    ext = MFCCExtractor(**BASE).fit()
    from_file = ext.transform([buf.getvalue()])[0]
    tone8 = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    direct = ext.transform([tone8])[0]
    np.testing.assert_allclose(from_file[:13], direct[:13], rtol=0.02, atol=0.5)


def test_mfcc_parameter_errors():
    with pytest.raises(ParameterError, match="n_mfcc=50 cannot exceed n_mels=40"):
        MFCCExtractor(n_mfcc=50, n_mels=40).fit()
    with pytest.raises(ParameterError, match="percentiles"):
        MFCCExtractor(pooling=("mean", "median")).fit()
    with pytest.raises(ParameterError, match="fmax"):
        MFCCExtractor(sr=8000, fmax=6000.0).fit()


def test_mfcc_feature_names():
    ext = MFCCExtractor(**BASE, deltas=1, pooling=("mean", "p90")).fit()
    names = ext.get_feature_names_out()
    assert len(names) == ext.n_features_out_ == 52
    assert names[0] == "mfcc0_mean" and names[13] == "d1_mfcc0_mean"
    assert names[-1] == "d1_mfcc12_p90"


def test_mel_filterbank_matches_librosa():
    for kw in [
        dict(sr=8000, n_fft=512, n_mels=40),
        dict(sr=22050, n_fft=2048, htk=True),
    ]:
        ref = librosa.filters.mel(**kw, dtype=np.float64)
        np.testing.assert_allclose(mel_filterbank(**kw), ref, rtol=1e-12, atol=1e-15)


def test_mfcc_cmvn_with_constant_pooled_statistics_is_refused():
    with pytest.raises(ParameterError, match=r"pooling \['mean', 'std'\] would be"):
        MFCCExtractor(cmvn="meanvar", pooling=("mean", "std", "max")).fit()
    with pytest.raises(ParameterError, match=r"pooling \['mean'\]"):
        MFCCExtractor(cmvn="mean", pooling=("mean",)).fit()
    MFCCExtractor(cmvn="mean", pooling=("std", "p90")).fit()  # std still varies


@pytest.mark.parametrize("flag, count", [(True, 1), (False, 0), (np.True_, 1)])
def test_mfcc_boolean_deltas_are_zero_or_one(flag, count):
    t = np.arange(4000) / 8000
    clips = [np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t[:3000])]
    ext = MFCCExtractor(**BASE, deltas=flag).fit()
    ref = MFCCExtractor(**BASE, deltas=count).fit()
    assert ext.n_features_out_ == 13 * (1 + count) * 2
    np.testing.assert_array_equal(ext.transform(clips), ref.transform(clips))
    assert list(ext.get_feature_names_out()) == list(ref.get_feature_names_out())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"deltas": 3}, r"The 'deltas' parameter of MFCCExtractor must be"),
        ({"dct_type": 4}, r"The 'dct_type' parameter of MFCCExtractor must be"),
        ({"mel_norm": 0.0}, r"The 'mel_norm' parameter"),
        ({"window": "no-such-window"}, r"window='no-such-window' is not a window"),
        ({"window": ("kaiser",)}, r"window=\('kaiser',\) is not a window"),
        ({"delta_width": 8}, "delta_width must be odd"),
        ({"win_length": 1024}, "win_length=1024 must not exceed n_fft=512"),
        ({"n_fft": 2, "n_mels": 1, "n_mfcc": 1, "hop_length": None}, "hop_length"),
    ],
)
def test_mfcc_every_bad_parameter_is_a_parameter_error(params, match):
    with pytest.raises(ParameterError, match=match):
        MFCCExtractor(**dict(BASE, **params)).fit()


def test_mfcc_long_clip_split_over_frames_matches_librosa(fsdd_clips):
    # one long clip: every kernel splits its frames (or columns) across
    # threads; the result is librosa's, and the same alone or in a batch
    long = np.concatenate(fsdd_clips)[: 8000 * 20]
    ext = MFCCExtractor(**BASE, deltas=2, pooling=None, n_jobs=2).fit()
    got = ext.transform([long])[0]
    ref = librosa.feature.mfcc(y=long, **BASE)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got[:, :13].T, ref, rtol=1e-4, atol=1e-6 * scale)
    for order in (1, 2):
        d = librosa.feature.delta(ref, width=9, order=order)
        cols = slice(13 * order, 13 * (order + 1))
        np.testing.assert_allclose(got[:, cols].T, d, rtol=1e-4, atol=1e-6 * scale)
    batch = ext.transform([fsdd_clips[0], long, fsdd_clips[1]])
    np.testing.assert_allclose(batch[1], got, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        batch[0], ext.transform([fsdd_clips[0]])[0], rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(deltas=0),
        dict(deltas=2, cmvn="meanvar", pooling=("p10", "max", "min")),
        dict(deltas=1, pooling=None, top_db=None),
    ],
)
def test_mfcc_two_jobs_equal_one(fsdd_clips, params):
    clips = fsdd_clips[:40] + [np.concatenate(fsdd_clips)[: 8000 * 10]]
    one = MFCCExtractor(**BASE, **params, n_jobs=1).fit().transform(clips)
    two = MFCCExtractor(**BASE, **params, n_jobs=2).fit().transform(clips)
    if params.get("pooling", "x") is None:
        one, two = np.vstack(list(one)), np.vstack(list(two))
    np.testing.assert_allclose(two, one, rtol=1e-12, atol=1e-12)
