"""MFCC throughput: mmfeat's MFCCExtractor vs librosa and python_speech_features.

Run: ``python benchmarks/bench_mfcc.py [--repeat N] [--json FILE] [--large]``
(needs ``pip install -e ".[bench]"`` for the peers).

Inputs: all 3,000 FSDD recordings (8 kHz, 0.14-2.28 s) and one 60-second
16 kHz clip (FSDD recordings concatenated and resampled). Every side
computes 13 MFCCs from 40 mel bands with 32 ms windows and 8 ms hops, plus
first and second deltas; mmfeat also pools (mean, std) over time, which the
peers' timings leave out. librosa is called per clip, as its own
``top_db`` floor requires for per-clip results (mmfeat's batch equals
those, checked here); python_speech_features uses its own filterbank and
is a speed peer only. Arrays are decoded before timing.

Two threads: mmfeat uses numba threads and FFT workers; the peers run their
per-clip calls from a 2-thread pool. Ratio = peer time / mmfeat time.
"""

from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import python_speech_features as psf
from _common import median_time, parser, report
from scipy.signal import resample_poly

from mmfeat.datasets import load_fsdd
from mmfeat.features.audio import MFCCExtractor
from mmfeat.io import read_audio


def kw_for(sr):
    n_fft = int(0.032 * sr)
    return dict(sr=sr, n_mfcc=13, n_fft=n_fft, hop_length=n_fft // 4, n_mels=40)


def librosa_one(clip, kw):
    m = librosa.feature.mfcc(y=clip, **kw)
    width = min(9, m.shape[1] - (1 - m.shape[1] % 2))
    if width >= 3:
        librosa.feature.delta(m, width=width, order=1)
        librosa.feature.delta(m, width=width, order=2)
    return m


def psf_one(clip, kw):
    sr = kw["sr"]
    m = psf.mfcc(
        clip,
        samplerate=sr,
        winlen=kw["n_fft"] / sr,
        winstep=kw["hop_length"] / sr,
        numcep=13,
        nfilt=40,
        nfft=kw["n_fft"],
    )
    d = psf.delta(m, 4)
    psf.delta(d, 4)
    return m


def pooled(func, clips, kw, n_jobs):
    if n_jobs == 1:
        return [func(c, kw) for c in clips]
    with ThreadPoolExecutor(n_jobs) as pool:
        return list(pool.map(lambda c: func(c, kw), clips, chunksize=64))


def main():
    args = parser(__doc__).parse_args()
    paths = load_fsdd().frame["path"].tolist()
    fsdd = [read_audio(p)[0].astype(np.float64) for p in paths]
    long16 = resample_poly(np.concatenate(fsdd)[: 8000 * 30], 2, 1)[: 16000 * 60]
    long16 = np.pad(long16, (0, 16000 * 60 - long16.size))
    cases = [
        ("FSDD, 3,000 clips", fsdd, kw_for(8000)),
        ("one 60 s clip, 16 kHz", [long16], kw_for(16000)),
    ]
    rows = []
    for name, clips, kw in cases:
        ext = {j: MFCCExtractor(**kw, deltas=2, n_jobs=j).fit() for j in (1, 2)}
        frames = MFCCExtractor(**kw, pooling=None).fit().transform(clips[:50])
        for clip, f in zip(clips[:50], frames):
            ref = librosa.feature.mfcc(y=clip, **kw)
            np.testing.assert_allclose(
                f.T, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max()
            )
        seconds = sum(c.size for c in clips) / kw["sr"]
        for j in (1, 2):
            ours = median_time(lambda j=j: ext[j].transform(clips), repeat=args.repeat)
            lib = median_time(
                lambda j=j: pooled(librosa_one, clips, kw, j),
                repeat=max(1, args.repeat // 2),
            )
            ps = median_time(
                lambda j=j: pooled(psf_one, clips, kw, j),
                repeat=max(1, args.repeat // 2),
            )
            case = f"{name}, {j} thr"
            rows.append((case, ours, lib, len(clips), "librosa (+delta)"))
            rows.append((case, ours, ps, len(clips), "python_speech_features"))
        print(f"{name}: {seconds:.0f} s of audio; librosa-equal output checked")
    report("MFCC + deltas throughput (clips/s)", rows, args, unit="clips/s")


if __name__ == "__main__":
    main()
