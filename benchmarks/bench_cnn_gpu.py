"""Throughput of CNNExtractor against the raw torchvision model, GPU or CPU.

Run on a machine with an NVIDIA GPU:
``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_cnn_gpu.py --quick``
(mmfeat importable: installed, or ``PYTHONPATH=.``; torch with CUDA and a
matching torchvision). Under a minute with ``--quick`` on an H100/H200, a
few minutes without. No network: every model has random weights (throughput
does not depend on them).

On the GPU, for resnet50 and resnet18 (``--models``) at 224x224, batch 256
(``--batch-size``), bf16 autocast and channels-last memory, in one run:

raw model
    the torchvision model alone on a pre-decoded uint8 batch already on
    the GPU (scaling and normalisation included): the ceiling;
from arrays
    ``CNNExtractor.transform`` on a uint8 (n, 224, 224, 3) NumPy stack in
    host memory (pinned staging, side-stream copies overlapped with
    compute); target >= 80% of the raw model;
from JPEG files
    ``transform`` on the fashion sample's JPEG paths (225x300, resized to
    224x224), decoded by OpenCV in ``--num-workers`` threads (default: every
    core); target >= 3,500 images/s;
JPEG files, decode="gpu"
    the same files decoded by nvJPEG (``torchvision.io.decode_jpeg``) and
    resized on the GPU; target >= 6,000 images/s.

Decoding alone is timed too (OpenCV threads; nvJPEG batches), to show which
stage bounds the file rows. Checks printed under the table: the extractor's
features equal the raw model's pooled ``layer4`` (fp32 reference, bf16
tolerance), and GPU-decoded features are close to CPU-decoded ones.

``--device cpu``: "simple" and resnet18 (when torchvision imports) at
224x224 on the CPU with ``--threads`` torch threads (default: every core),
from arrays and from JPEG files, against the raw module's forward pass.

Flags: ``--quick`` (fewer images, one timed run), ``--device
{auto,cuda,cpu}``, ``--models a,b``, ``--batch-size N``, ``--num-workers N``,
``--threads N``, ``--repeat N`` (timed runs, median), ``--json FILE``,
``--large`` (more images).
"""

import os
import statistics
import time

import numpy as np
import torch
from _common import parser, report_table

from mmfeat.datasets import load_fashion_products
from mmfeat.features.image import CNNExtractor
from mmfeat.io import read_image
from mmfeat.utils._parallel import map_items

SIZE = (224, 224)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def log(msg):
    print(msg, flush=True)


def torchvision_or_none():
    try:
        import torchvision
    except Exception as exc:  # missing, or built for another torch
        log(f"torchvision does not import ({exc}); torchvision rows are skipped")
        return None
    return torchvision


def timed(func, *, repeat, sync):
    """Median seconds of ``repeat`` calls after one warm-up call."""
    func()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def decode_all(paths, workers):
    images, _ = map_items(
        lambda p: read_image(p, mode="rgb", size=SIZE, dtype="uint8"),
        list(paths),
        n_jobs=workers,
    )
    return np.stack(images)


def row(model, case, n, seconds, *, raw=None, target=None, unit_target="img/s"):
    rate = n / seconds
    out = dict(model=model, case=case, n=n, seconds=seconds, rate=rate)
    if raw is not None:
        out["vs_raw"] = rate / raw
    if target is not None:
        kind, value = target
        out["target"] = f">= {value:.0%} of raw" if kind == "ratio" else f">= {value:,}"
        got = out["vs_raw"] if kind == "ratio" else rate
        out["met"] = "yes" if got >= value else "NO"
    return out


# -- GPU ----------------------------------------------------------------------
def run_gpu(args, paths, tv):
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize
    workers = args.num_workers
    n_arrays = 1024 if args.quick else (8192 if args.large else 4096)
    n_files = min(len(paths), 1024 if args.quick else len(paths))
    files = list(paths[:n_files])
    repeat = 1 if args.quick else args.repeat
    bs = args.batch_size
    rows, checks = [], []

    log(f"decoding {bs} JPEGs for the array rows ...")
    base = decode_all(paths[:bs], workers)  # (bs, 224, 224, 3) uint8
    arrays = np.ascontiguousarray(np.resize(base, (n_arrays, *base.shape[1:])))

    # decoding alone: OpenCV threads, and nvJPEG batches
    t = timed(lambda: decode_all(files, workers), repeat=repeat, sync=sync)
    rows.append(row("-", f"decode+resize only, OpenCV, {workers} threads", n_files, t))
    datas = [
        torch.frombuffer(bytearray(open(p, "rb").read()), dtype=torch.uint8)
        for p in files
    ]

    def nvjpeg():
        for i in range(0, len(datas), bs):
            imgs = tv.io.decode_jpeg(
                datas[i : i + bs], mode=tv.io.ImageReadMode.RGB, device=device
            )
            # the photos come in a few sizes: resize each size group at once
            groups = {}
            for img in imgs:
                groups.setdefault(tuple(img.shape), []).append(img)
            for same in groups.values():
                torch.nn.functional.interpolate(
                    torch.stack(same).float(),
                    size=SIZE,
                    mode="bilinear",
                    antialias=True,
                )

    try:
        t = timed(nvjpeg, repeat=repeat, sync=sync)
        rows.append(
            row("-", "decode+resize only, nvJPEG (files in memory)", n_files, t)
        )
    except Exception as exc:  # report, go on
        log(f"nvJPEG decoding failed: {exc}")

    for name in args.models:
        log(f"{name}: raw model ...")
        model = tv.models.get_model(name, weights=None).eval()
        model = model.to(device, memory_format=torch.channels_last)
        x_u8 = (
            torch.from_numpy(base).to(device).permute(0, 3, 1, 2)
        )  # channels-last view
        mean, std = MEAN.to(device), STD.to(device)

        def raw():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                x = ((x_u8.float() - mean) / std).contiguous(
                    memory_format=torch.channels_last
                )
                model(x)

        iters = 10 if args.quick else 30
        t_raw = timed(lambda: [raw() for _ in range(iters)], repeat=repeat, sync=sync)
        raw_rate = iters * bs / t_raw
        rows.append(row(name, "raw model, uint8 batch on GPU", iters * bs, t_raw))

        ext = CNNExtractor(
            backbone=name,
            image_size=SIZE,
            batch_size=bs,
            num_workers=workers,
            device="cuda",
            random_state=0,
        ).fit()
        log(f"{name}: CNNExtractor from arrays ...")
        t = timed(lambda: ext.transform(arrays), repeat=repeat, sync=sync)
        rows.append(
            row(
                name,
                "CNNExtractor, uint8 arrays in host memory",
                n_arrays,
                t,
                raw=raw_rate,
                target=("ratio", 0.8),
            )
        )
        log(f"{name}: CNNExtractor from JPEG files ...")
        t = timed(lambda: ext.transform(files), repeat=repeat, sync=sync)
        rows.append(
            row(
                name,
                f"CNNExtractor, JPEG files, OpenCV x{workers}",
                n_files,
                t,
                raw=raw_rate,
                target=("rate", 3500),
            )
        )
        cpu_feats = ext.transform(files[:bs])
        log(f"{name}: CNNExtractor from JPEG files, decode='gpu' ...")
        ext.set_params(decode="gpu")
        try:
            t = timed(lambda: ext.transform(files), repeat=repeat, sync=sync)
            rows.append(
                row(
                    name,
                    "CNNExtractor, JPEG files, decode='gpu'",
                    n_files,
                    t,
                    raw=raw_rate,
                    target=("rate", 6000),
                )
            )
            gpu_feats = ext.transform(files[:bs])
            cos = np.sum(cpu_feats * gpu_feats, 1) / (
                np.linalg.norm(cpu_feats, axis=1) * np.linalg.norm(gpu_feats, axis=1)
            )
            checks.append(
                f"{name}: decode='gpu' vs 'cpu' features, cosine similarity "
                f"min {cos.min():.4f}, mean {cos.mean():.4f}"
            )
        except Exception as exc:
            log(f"decode='gpu' failed: {type(exc).__name__}: {exc}")
            rows.append(dict(model=name, case=f"decode='gpu' FAILED: {exc}"[:70]))
        ext.set_params(decode="cpu")

        # agreement with the raw model: pooled layer4 in fp32 (ResNets)
        if hasattr(model, "layer4") and hasattr(model, "fc"):
            trunk = torch.nn.Sequential(*list(model.children())[:-2]).float()
            with torch.inference_mode():
                x = ((x_u8[:64].float() - mean) / std).contiguous(
                    memory_format=torch.channels_last
                )
                ref = trunk(x).mean((2, 3)).cpu().numpy()
            ext.module_.load_state_dict(model.state_dict())
            ours = ext.transform(base[:64])
            rel = np.abs(ours - ref).max() / np.abs(ref).max()
            checks.append(
                f"{name}: CNNExtractor (bf16) vs raw pooled layer4 (fp32): max "
                f"|diff| / max |ref| = {rel:.4f} "
                f"({'ok' if rel < 0.05 else 'TOO LARGE'})"
            )
        model = ext = trunk = None  # free the GPU memory before the next model
        torch.cuda.empty_cache()
    return rows, checks


# -- CPU ----------------------------------------------------------------------
def run_cpu(args, paths, tv):
    n = 64 if args.quick else (256 if args.large else 128)
    repeat = 1 if args.quick else min(args.repeat, 3)
    threads = args.threads
    base = decode_all(paths[:n], args.num_workers)
    files = list(paths[:n])
    rows = []
    models = ["simple"] + (["resnet18"] if tv is not None else [])
    for name in models:
        ext = CNNExtractor(
            backbone=name,
            image_size=SIZE,
            batch_size=32,
            num_workers=args.num_workers,
            n_jobs=threads,
            device="cpu",
            random_state=0,
        ).fit()
        module = ext.module_
        x = (torch.from_numpy(base).permute(0, 3, 1, 2).float() - MEAN) / STD
        before = torch.get_num_threads()
        torch.set_num_threads(threads)

        def raw():
            with torch.inference_mode():
                for i in range(0, n, 32):
                    module(x[i : i + 32])

        log(f"{name}: raw module on CPU ...")
        t_raw = timed(raw, repeat=repeat, sync=lambda: None)
        torch.set_num_threads(before)
        raw_rate = n / t_raw
        rows.append(row(name, f"raw module, float batch, {threads} threads", n, t_raw))
        log(f"{name}: CNNExtractor from arrays ...")
        t = timed(lambda: ext.transform(base), repeat=repeat, sync=lambda: None)
        rows.append(row(name, "CNNExtractor, uint8 arrays", n, t, raw=raw_rate))
        log(f"{name}: CNNExtractor from JPEG files ...")
        t = timed(lambda: ext.transform(files), repeat=repeat, sync=lambda: None)
        rows.append(row(name, "CNNExtractor, JPEG files", n, t, raw=raw_rate))
    return rows, []


def main():
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="fewer images, one timed run")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument(
        "--models", default="resnet50,resnet18", help="torchvision names (GPU)"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--num-workers", type=int, default=os.cpu_count(), help="decoding threads"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch CPU threads (CPU run)",
    )
    args = p.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    t0 = time.perf_counter()
    cuda = args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()
    )
    paths = load_fashion_products().frame["path"].to_numpy()
    tv = torchvision_or_none()
    versions = f"torch {torch.__version__}" + (
        f", torchvision {tv.__version__}" if tv else ""
    )
    if cuda:
        if tv is None:
            raise SystemExit("the GPU rows need torchvision (models, nvJPEG)")
        where = f"GPU: {torch.cuda.get_device_name(0)}, {versions}"
        log(where)
        rows, checks = run_gpu(args, paths, tv)
    else:
        where = f"CPU: {args.threads} torch threads, {versions}"
        log(where)
        rows, checks = run_cpu(args, paths, tv)
    total = time.perf_counter() - t0
    columns = [
        ("model", "model", ""),
        ("case", "case", ""),
        ("n", "images", ",d"),
        ("rate", "images/s", ",.0f"),
        ("vs_raw", "vs raw", ".0%"),
        ("target", "target", ""),
        ("met", "met", ""),
    ]
    report_table(
        f"CNNExtractor throughput at {SIZE[0]}x{SIZE[1]} "
        f"({where}; {total:.0f} s in all)",
        columns,
        rows,
        args,
        extra=dict(device=where, checks=checks, seconds=total),
    )
    for line in checks:
        print(line)


if __name__ == "__main__":
    main()
