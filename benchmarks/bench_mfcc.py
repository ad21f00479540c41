"""MFCC throughput: mmfeat's MFCCExtractor vs librosa and a torch.stft pipeline.

Run: ``python benchmarks/bench_mfcc.py [--repeat N] [--json FILE] [--large]``
(needs ``pip install -e ".[bench]"`` and CPU torch for the peers).

Inputs: 1,000 FSDD recordings (8 kHz, 0.14-2.28 s; ``--large``: all 3,000)
and one 60-second 16 kHz clip (FSDD recordings concatenated and resampled).
Every side computes 13 MFCCs from 40 mel bands. FSDD: the plain speech call
users run (``n_fft=256, hop_length=80``, no deltas) and the same with first
and second deltas; the long clip: 32 ms windows, 8 ms hops, with deltas.
mmfeat also pools (mean, std) over time, which the peers' timings leave
out. librosa is called per clip, as its own ``top_db`` floor requires for
per-clip results (mmfeat's frames equal those, checked here). The torch
peer is ``torch.stft`` + mel filterbank matmul + log + ``top_db`` floor + a
DCT matrix (+ ``librosa.feature.delta``-equal Savitzky-Golay deltas via
``conv1d``), per clip, checked against librosa too. Arrays are decoded
before timing.

Two threads: mmfeat uses numba threads and FFT workers; librosa runs its
per-clip calls from a 2-thread pool; torch gets ``torch.set_num_threads(2)``.
Ratio = peer time / mmfeat time.
"""

from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import torch
from _common import median_time, parser, report
from scipy.fft import dct
from scipy.signal import resample_poly

from mmfeat.datasets import load_fsdd
from mmfeat.features.audio import MFCCExtractor, mel_filterbank
from mmfeat.io import read_audio

DELTA_WIDTH = 9


def librosa_one(clip, kw, deltas):
    m = librosa.feature.mfcc(y=clip, **kw)
    if deltas:
        width = min(DELTA_WIDTH, m.shape[1] - (1 - m.shape[1] % 2))
        if width >= 3:
            librosa.feature.delta(m, width=width, order=1)
            librosa.feature.delta(m, width=width, order=2)
    return m


def librosa_all(clips, kw, deltas, n_jobs):
    if n_jobs == 1:
        return [librosa_one(c, kw, deltas) for c in clips]
    with ThreadPoolExecutor(n_jobs) as pool:
        return list(pool.map(lambda c: librosa_one(c, kw, deltas), clips))


class TorchMFCC:
    """librosa's ``feature.mfcc`` (and ``feature.delta``) in CPU torch."""

    def __init__(self, kw):
        self.n_fft, self.hop = kw["n_fft"], kw["hop_length"]
        self.window = torch.hann_window(self.n_fft, dtype=torch.float64)
        mel = mel_filterbank(sr=kw["sr"], n_fft=self.n_fft, n_mels=kw["n_mels"])
        self.mel = torch.from_numpy(mel)
        n_mels = kw["n_mels"]
        self.dct = torch.from_numpy(
            dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[: kw["n_mfcc"]]
        )
        self.sg = {
            (w, o): torch.from_numpy(
                librosa.feature.delta(np.eye(w), width=w, order=o, axis=0)[w // 2][
                    ::-1
                ].copy()
            )
            for w in range(3, DELTA_WIDTH + 1, 2)
            for o in (1, 2)
        }

    def one(self, clip, deltas):
        y = torch.from_numpy(clip)
        spec = torch.stft(
            y,
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        db = 10.0 * torch.log10(torch.clamp(self.mel @ power, min=1e-10))
        db = torch.maximum(db, db.max() - 80.0)
        m = self.dct @ db
        if deltas and m.shape[1] >= 3:
            # interior frames only (edge fits omitted: a speed peer)
            width = min(DELTA_WIDTH, m.shape[1] - (1 - m.shape[1] % 2))
            x = m[:, None, :]
            for order in (1, 2):
                k = self.sg[(width, order)].flip(0)[None, None, :]
                torch.nn.functional.conv1d(x, k)
        return m

    def all(self, clips, deltas, n_jobs):
        before = torch.get_num_threads()
        torch.set_num_threads(n_jobs)
        try:
            with torch.inference_mode():
                return [self.one(c, deltas) for c in clips]
        finally:
            torch.set_num_threads(before)


def main():
    args = parser(__doc__).parse_args()
    paths = load_fsdd().frame["path"].tolist()
    fsdd_all = [read_audio(p)[0].astype(np.float64) for p in paths]
    fsdd = fsdd_all if args.large else fsdd_all[::3]  # 1,000 clips
    long16 = resample_poly(np.concatenate(fsdd_all)[: 8000 * 30], 2, 1)
    long16 = np.pad(long16, (0, max(0, 16000 * 60 - long16.size)))[: 16000 * 60]
    speech = dict(sr=8000, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40)
    kw16 = dict(sr=16000, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40)
    cases = [
        (f"FSDD {len(fsdd)}, no deltas", fsdd, speech, 0),
        (f"FSDD {len(fsdd)}, deltas 2", fsdd, speech, 2),
        ("one 60 s clip 16k, deltas 2", [long16], kw16, 2),
    ]
    rows = []
    for name, clips, kw, deltas in cases:
        ext = {j: MFCCExtractor(**kw, deltas=deltas, n_jobs=j).fit() for j in (1, 2)}
        tmf = TorchMFCC(kw)
        check = MFCCExtractor(**kw, pooling=None).fit().transform(clips[:50])
        for clip, f in zip(clips[:50], check):
            ref = librosa.feature.mfcc(y=clip, **kw)
            tol = dict(rtol=1e-4, atol=1e-6 * np.abs(ref).max())
            np.testing.assert_allclose(f.T, ref, **tol)
            np.testing.assert_allclose(tmf.one(clip, 0).numpy(), ref, **tol)
        n = len(clips)
        for j in (1, 2):
            case = f"{name}, {j} thr"
            ours = median_time(lambda j=j: ext[j].transform(clips), repeat=args.repeat)
            lib = median_time(
                lambda j=j: librosa_all(clips, kw, deltas, j),
                repeat=max(1, args.repeat // 2),
            )
            tor = median_time(
                lambda j=j: tmf.all(clips, deltas, j), repeat=max(1, args.repeat // 2)
            )
            rows.append((case, ours, lib, n, "librosa"))
            rows.append((case, ours, tor, n, "torch.stft"))
        seconds = sum(c.size for c in clips) / kw["sr"]
        print(f"{name}: {seconds:.0f} s of audio; librosa-equal output checked")
    report("MFCC throughput (clips/s)", rows, args, unit="clips/s")


if __name__ == "__main__":
    main()
