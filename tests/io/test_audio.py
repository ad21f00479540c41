import io

import numpy as np
import pytest
import soundfile as sf

from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.io import AudioReader, read_audio
from mmfeat.utils._audio_arrays import array_samples


def _tone(freq=440.0, sr=8000, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def _wav(y, sr, subtype="PCM_16", fmt="WAV"):
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y))
    return np.fft.rfftfreq(y.size, 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "PCM_U8"])
def test_read_audio_pcm_widths_give_float32_in_unit_range(tmp_path, subtype):
    y = _tone()
    path = tmp_path / f"tone_{subtype}.wav"
    path.write_bytes(_wav(y, 8000, subtype=subtype))
    out, sr = read_audio(path)
    assert sr == 8000 and out.dtype == np.float32 and out.shape == y.shape
    tol = 1e-2 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(out, y, atol=tol)


def test_read_audio_stereo_44k_to_mono_8k(tmp_path):
    stereo = _tone(freq=1000, sr=44100, seconds=1.0, channels=2)
    stereo[:, 1] *= 0.5  # channels differ, so the mean is checkable
    path = tmp_path / "stereo.wav"
    path.write_bytes(_wav(stereo, 44100))
    y, sr = read_audio(path, sr=8000)
    assert sr == 8000 and y.shape == (8000,)
    assert _peak_hz(y, sr) == pytest.approx(1000, abs=2)
    assert np.abs(y).max() == pytest.approx(0.375, abs=0.01)  # mean of 0.5 and 0.25
    both, sr = read_audio(path, mono=False)
    assert both.shape == (2, 44100) and sr == 44100


def test_read_audio_flac_and_ogg_bytes():
    y = _tone()
    for fmt, subtype, tol in [("FLAC", "PCM_16", 1e-4), ("OGG", "VORBIS", 0.1)]:
        out, sr = read_audio(_wav(y, 8000, subtype=subtype, fmt=fmt))
        assert sr == 8000 and abs(out.size - y.size) <= 64
        assert _peak_hz(out, sr) == pytest.approx(440, abs=4)
        if fmt == "FLAC":
            np.testing.assert_allclose(out, y, atol=tol)


@pytest.mark.parametrize(
    "name,make,reason",
    [
        ("empty.wav", lambda: b"", "empty file"),
        ("cut.wav", lambda: _wav(_tone(), 8000)[:3000], "truncated WAV"),
        ("silent.wav", lambda: _wav(np.zeros(0), 8000), "no samples"),
        (
            "text.wav",
            lambda: b"RIFF? no, just some text pretending to be audio\n" * 5,
            "cannot decode audio",
        ),
    ],
)
def test_read_audio_bad_files_name_file_and_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(InputError, match=reason) as info:
        read_audio(path)
    assert info.value.source == str(path)


def test_read_audio_missing_path_and_directory(tmp_path):
    with pytest.raises(InputError, match="audio file not found"):
        read_audio(tmp_path / "none.wav")
    with pytest.raises(InputError, match="is a directory"):
        read_audio(tmp_path)


def test_read_audio_nan_samples_refused():
    y = _tone()
    y[100] = np.nan
    with pytest.raises(
        InputError, match="NaN or infinite samples \\(first at sample 100\\)"
    ):
        read_audio(y)
    with pytest.raises(InputError, match="NaN"):
        read_audio(_wav(y.astype(np.float32), 8000, subtype="FLOAT"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("channels", [1, 2])
def test_array_samples_refuse_every_non_finite_sample(dtype, bad, channels):
    # the check looks at min and max first: a NaN or infinity anywhere, in
    # any channel, must still be found and named
    y = np.tile(_tone().astype(dtype), (channels, 1)).squeeze()
    y2 = y.reshape(channels, -1)
    y2[-1, 777] = bad
    for mono in (True, False):
        with pytest.raises(InputError, match="first at sample 777"):
            array_samples(y, mono=mono, dtype=dtype)


def test_array_samples_refuse_samples_past_float32s_range():
    # float64 clips are kept as float64, but a sample float32 cannot hold
    # is refused as read_audio's float32 copy always refused it
    y = np.full(1000, 3e38)
    np.testing.assert_array_equal(array_samples(y, dtype=np.float64), y)
    y[321] = -1e300
    for dtype in (np.float32, np.float64):
        with pytest.raises(InputError, match="first at sample 321"):
            array_samples(y, dtype=dtype)


def test_array_samples_keep_float64_and_never_copy_it():
    y = np.random.default_rng(0).standard_normal(1001)
    got = array_samples(y, dtype=np.float64)
    assert got is y or np.shares_memory(got, y)
    assert array_samples(y).dtype == np.float32  # read_audio's dtype
    ints = np.array([-32768, 0, 16384], dtype=np.int16)
    np.testing.assert_array_equal(
        array_samples(ints, dtype=np.float64), [-1.0, 0.0, 0.5]
    )
    for empty in (np.zeros(0), np.zeros((0, 50)), np.zeros((2, 0))):
        with pytest.raises(InputError, match="no samples"):
            array_samples(empty)


def test_read_audio_int16_array_scaled():
    y, sr = read_audio(np.array([0, 16384, -32768], dtype=np.int16), sr=8000)
    np.testing.assert_allclose(y, [0, 0.5, -1.0])


def test_audio_reader_rows_aligned_with_errors_recorded(tmp_path):
    good = tmp_path / "ok.wav"
    good.write_bytes(_wav(_tone(), 8000))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(_wav(_tone(), 8000)[:2000])
    reader = AudioReader(sr=4000, on_error="missing", n_jobs=2)
    with collect_item_errors() as errors:
        out = reader.fit_transform([good, cut, None, good])
    assert [o is None for o in out] == [False, True, True, False]
    assert out[0].shape == (2000,)
    assert [(e.row, e.source) for e in errors] == [(1, str(cut))]
    with pytest.raises(InputError, match=r"row 1 \(.*cut\.wav\): truncated WAV"):
        AudioReader().fit_transform([good, cut])


def test_audio_reader_stack_of_clips():
    out = AudioReader(sr=8000).fit_transform(np.zeros((3, 100), np.float32))
    assert len(out) == 3 and out[0].shape == (100,)


def test_read_audio_max_duration_checks_header_and_can_be_lifted(tmp_path):
    path = tmp_path / "three_s.wav"
    path.write_bytes(_wav(_tone(seconds=3.0), 8000))
    with pytest.raises(InputError, match=r"audio is 3\.0 s long .*max_duration=2 s"):
        read_audio(path, max_duration=2)
    assert read_audio(path, max_duration=3)[0].shape == (24000,)
    assert read_audio(path, max_duration=None)[0].shape == (24000,)
    assert read_audio(path, max_duration=float("inf"))[0].shape == (24000,)
    for bad in (0, -1, float("nan"), "10"):
        with pytest.raises(ParameterError, match="max_duration"):
            read_audio(path, max_duration=bad)
    with pytest.raises(ValueError, match="max_duration"):
        AudioReader(max_duration=-1).fit()


def test_read_audio_stereo_is_mixed_block_by_block_as_a_whole_mean():
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (200_000, 3)).astype(np.float32)
    y, _ = read_audio(_wav(stereo, 8000, subtype="FLOAT"))
    np.testing.assert_array_equal(y, stereo.mean(axis=1))
    both, _ = read_audio(_wav(stereo, 8000, subtype="FLOAT"), mono=False)
    np.testing.assert_array_equal(both, stereo.T)


@pytest.mark.parametrize(
    "source,target,factors",
    [
        (44100, 16000, (160, 441)),
        (48000, 44100, (147, 160)),
        (22050, 16000, (320, 441)),
        (8000, 11025, (441, 320)),
        (192000, 44100, (147, 640)),
        (11025, 48000, (640, 147)),
    ],
)
def test_read_audio_common_rate_pairs_resample_exactly(source, target, factors):
    from mmfeat.io._audio import _poly_factors

    assert _poly_factors(target, source) == factors
    tone = _tone(freq=1000, sr=source)
    y, sr = read_audio(_wav(tone, source), sr=target)
    assert sr == target and abs(y.size - tone.size * target / source) <= 1
    assert _peak_hz(y, sr) == pytest.approx(1000, abs=3)


def test_audio_reader_parameters():
    clip = np.zeros(800, dtype=np.float32)
    out = AudioReader(sr=8000, max_duration=float("inf")).fit_transform([clip])
    assert out[0].shape == (800,)
    for params, name in [({"sr": 0}, "sr"), ({"mono": "yes"}, "mono")]:
        with pytest.raises(ParameterError, match=f"The '{name}' parameter of Audio"):
            AudioReader(**params).fit()
