"""JPEG batches decoded by nvJPEG and resized on the GPU.

Files are read and checked on the CPU, in threads, exactly as
:func:`~mmfeat.io.read_image` reads them: at most ``max_file_bytes`` read,
the signature sniffed, the header's size held to ``max_pixels``
(decompression bombs) and the stream checked for truncation, with the same
messages. JPEG streams are then decoded on the GPU in one
``torchvision.io.decode_jpeg`` call per batch; other formats, and any JPEG
nvJPEG refuses, are decoded on the CPU from the bytes already read (never
read twice).

torch and torchvision are optional extras: the caller imports them and
passes them in, so this module imports without them.
"""

import os

import numpy as np

from mmfeat.exceptions import InputError
from mmfeat.io._images import (
    DEFAULT_MAX_PIXELS,
    check_image_header,
    decode_image_bytes,
    read_image,
    sniff_image_format,
)
from mmfeat.utils._items import DEFAULT_MAX_FILE_BYTES, item_source, read_source_bytes
from mmfeat.utils._parallel import ItemError, prefetch_batches

__all__ = ["GpuJpegDecoder"]


class GpuJpegDecoder:
    """Batches of RGB uint8 images on a CUDA device, JPEG decoded by nvJPEG.

    Parameters
    ----------
    torch, torchvision : module
        The imported packages.
    device : torch.device
        The CUDA device that decodes and receives the batches.
    size : tuple of int (height, width)
        Size of every output image.
    resize : {"exact", "pad"}, default="exact"
        Stretch to ``size``, or fit inside it keeping the aspect ratio and
        pad with black.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Decompression-bomb guard of :func:`~mmfeat.io.read_image`, checked on
        every header before anything is decoded, on the CPU or the GPU.
    max_file_bytes : int or None, default=DEFAULT_MAX_FILE_BYTES
        Largest file read.
    batch_size : int, default=64
        Images per batch.
    num_workers : int, default=None
        Threads reading and checking files (joblib semantics).
    on_error : {"raise", "missing"}, default="raise"
        A bad item raises :class:`~mmfeat.exceptions.InputError` naming its
        row, or is left out of its batch and returned among the batch's
        errors.

    Notes
    -----
    Resizing is bilinear with antialiasing (as a downscale should be), which
    differs slightly from OpenCV's, so the pixels are close to, not equal
    to, those of the CPU reader. The EXIF orientation is applied when the
    installed torchvision can do so on the GPU.
    """

    def __init__(
        self,
        torch,
        torchvision,
        device,
        *,
        size,
        resize="exact",
        max_pixels=DEFAULT_MAX_PIXELS,
        max_file_bytes=DEFAULT_MAX_FILE_BYTES,
        batch_size=64,
        num_workers=None,
        on_error="raise",
    ):
        self.torch = torch
        self.tv = torchvision
        self.device = device
        self.size = tuple(size)
        self.resize = resize
        self.max_pixels = max_pixels
        self.max_file_bytes = max_file_bytes
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.on_error = on_error
        self.exif = True  # apply EXIF orientation, as the CPU decoder does
        self.exif_works = False

    def _cpu_options(self):
        return dict(
            mode="rgb",
            size=self.size,
            resize=self.resize,
            dtype="uint8",
            max_pixels=self.max_pixels,
        )

    def _fetch(self, item):
        """("jpeg", (source, uint8 array of the file)) or ("image", uint8 image)."""
        if not isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
            # arrays, and the clear InputError for anything else
            return "image", read_image(
                item, max_file_bytes=self.max_file_bytes, **self._cpu_options()
            )
        source = item_source(item)
        buf = read_source_bytes(
            item, kind="image file", max_file_bytes=self.max_file_bytes
        )
        if sniff_image_format(buf) != "JPEG":
            return "image", decode_image_bytes(
                buf, source=source, **self._cpu_options()
            )
        # the CPU reader's guard: a size in the header, within the pixel
        # limit, and no visible truncation, before nvJPEG sees a byte
        check_image_header(buf, "JPEG", max_pixels=self.max_pixels, source=source)
        # writable (torch.from_numpy needs it): the one copy kept in flight
        return "jpeg", (source, np.frombuffer(bytearray(buf), dtype=np.uint8))

    def _decode(self, datas):
        torch, io = self.torch, self.tv.io
        tensors = [torch.from_numpy(d) for d in datas]
        kwargs = dict(mode=io.ImageReadMode.RGB, device=self.device)
        if self.exif:
            try:
                out = io.decode_jpeg(tensors, apply_exif_orientation=True, **kwargs)
            except (TypeError, RuntimeError, NotImplementedError):
                if self.exif_works:
                    raise  # a bad stream in this batch
                out = io.decode_jpeg(tensors, **kwargs)  # raises for bad streams
                self.exif = False  # this torchvision cannot rotate on the GPU
                return out
            self.exif_works = True
            return out
        return io.decode_jpeg(tensors, **kwargs)

    def _target(self, h, w):
        out_h, out_w = self.size
        if self.resize == "exact":
            return out_h, out_w
        scale = min(out_h / h, out_w / w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _resized(self, images):
        """(3, h, w) uint8 GPU images to (3, H, W) at ``size``.

        Images of one size are resized in one call (bilinear, antialiased,
        as a downscale should be); ``resize="pad"`` centres them on black.
        """
        torch = self.torch
        out_h, out_w = self.size
        out = [None] * len(images)
        groups = {}
        for k, img in enumerate(images):
            groups.setdefault(tuple(img.shape[1:]), []).append(k)
        for (h, w), ks in groups.items():
            th, tw = self._target(h, w)
            if (h, w) == (th, tw):
                res = torch.stack([images[k] for k in ks])
            else:
                res = torch.nn.functional.interpolate(
                    torch.stack([images[k] for k in ks]).float(),
                    size=(th, tw),
                    mode="bilinear",
                    antialias=True,
                    align_corners=False,
                )
                res = res.round_().clamp_(0, 255).to(torch.uint8)
            if (th, tw) != (out_h, out_w):
                canvas = torch.zeros(
                    (len(ks), 3, out_h, out_w), dtype=torch.uint8, device=res.device
                )
                top, left = (out_h - th) // 2, (out_w - tw) // 2
                canvas[:, :, top : top + th, left : left + tw] = res
                res = canvas
            for k, r in zip(ks, res):
                out[k] = r
        return out

    def batches(self, items, stream):
        """Yield ``(start, rows, batch, "nchw", errors, event)`` per batch.

        ``batch`` is a uint8 (b, 3, H, W) tensor on the device of the
        readable ``rows`` of the batch (None when there are none), made on
        ``stream``; ``event`` marks its end there. ``errors`` are the
        batch's refused items (with ``on_error="missing"``), in row order:
        the caller reports them (this runs in a producer thread).
        """
        torch = self.torch
        for start, _, values, errs in prefetch_batches(
            lambda start, chunk: (self._fetch, None),
            items,
            self.batch_size,
            n_jobs=self.num_workers,
            on_error=self.on_error,
        ):
            batch = event = None
            with torch.cuda.stream(stream):
                images, rows = self._images(values, start, errs)
                if images:
                    batch = torch.stack(images)
                    event = torch.cuda.Event()
                    event.record(stream)
            yield start, np.asarray(rows, dtype=int), batch, "nchw", sorted(errs), event

    def _images(self, values, start, errs):
        """Decode and resize the fetched items of one batch, on the GPU."""
        torch = self.torch
        present = [i for i, v in enumerate(values) if v is not None]
        jpeg = [i for i in present if values[i][0] == "jpeg"]
        decoded = {}
        if jpeg:
            datas = [values[i][1][1] for i in jpeg]
            try:
                decoded = dict(zip(jpeg, self._decode(datas)))
            except RuntimeError:  # one bad stream fails the whole call
                for i, data in zip(jpeg, datas):
                    try:
                        decoded[i] = self._decode([data])[0]
                    except RuntimeError:
                        pass  # the CPU decides below
        images, rows = [], []
        for i in present:
            kind, payload = values[i]
            if i in decoded:
                images.append(decoded[i])
                rows.append(i)
                continue
            if kind == "jpeg":  # nvJPEG refused it: decode its bytes on the CPU
                source, data = payload
                try:
                    payload = decode_image_bytes(
                        data.tobytes(), source=source, **self._cpu_options()
                    )
                except InputError as exc:
                    if self.on_error == "raise":
                        raise exc.with_row(start + i) from None
                    errs.append(ItemError(start + i, exc.source, exc.reason))
                    continue
            host = torch.from_numpy(np.require(payload, requirements=["C", "W"]))
            images.append(host.permute(2, 0, 1).to(self.device))  # at ``size``
            rows.append(i)
        return self._resized(images), rows
