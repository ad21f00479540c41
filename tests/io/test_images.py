import io
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.io import ImageReader, read_image


@pytest.fixture
def photo(rng):
    """A 30x40 RGB uint8 image with distinct corners (to see rotations)."""
    img = (rng.random((30, 40, 3)) * 200).astype(np.uint8)
    img[:5, :5] = (255, 0, 0)  # red top-left
    return img


def _png_bytes(img):
    arr = img[..., ::-1] if img.ndim == 3 and img.shape[2] == 3 else img
    if img.ndim == 3 and img.shape[2] == 4:
        arr = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    return cv2.imencode(".png", arr)[1].tobytes()


def _jpeg_bytes(img, quality=95):
    return cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[
        1
    ].tobytes()


def test_read_image_path_bytes_and_array_agree(tmp_path, photo):
    path = tmp_path / "données_图像.png"  # unicode file name
    path.write_bytes(_png_bytes(photo))
    from_path = read_image(path, mode="rgb")
    from_bytes = read_image(path.read_bytes(), mode="rgb")
    from_array = read_image(photo, mode="rgb")
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_allclose(from_path, photo / 255.0, atol=1e-6)
    np.testing.assert_allclose(from_array, from_path, atol=1e-6)
    assert from_path.dtype == np.float32 and from_path.shape == (30, 40, 3)


def test_read_image_gray_uses_bt601_luma(photo):
    gray = read_image(photo, mode="gray")
    expected = (photo @ np.array([0.299, 0.587, 0.114])) / 255
    np.testing.assert_allclose(gray, expected, atol=2e-3)


def test_read_image_uint8_output_matches_float(photo):
    as_u8 = read_image(_png_bytes(photo), mode="rgb", dtype="uint8")
    assert as_u8.dtype == np.uint8
    np.testing.assert_array_equal(as_u8, photo)


@pytest.mark.parametrize(
    "name,make,reason",
    [
        ("empty.png", lambda d: b"", "empty file"),
        ("notes.png", lambda d: b"hello, this is not an image\n" * 10, "not an image"),
        (
            "half.jpg",
            lambda d: _jpeg_bytes(d)[: len(_jpeg_bytes(d)) // 2],
            "truncated JPEG",
        ),
        (
            "half.png",
            lambda d: _png_bytes(d)[: len(_png_bytes(d)) // 2],
            "truncated PNG",
        ),
        (
            "junk.png",
            lambda d: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"IEND",
            "cannot decode",
        ),
    ],
)
def test_read_image_bad_files_name_file_and_reason(tmp_path, photo, name, make, reason):
    path = tmp_path / name
    path.write_bytes(make(photo))
    with pytest.raises(InputError, match=reason) as info:
        read_image(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)


def test_read_image_missing_path_and_directory(tmp_path):
    with pytest.raises(InputError, match="image file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)


def _png_claiming(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 64)
    idat_chunk = b"IDAT" + idat
    idat_full = (
        struct.pack(">I", len(idat))
        + idat_chunk
        + struct.pack(">I", zlib.crc32(idat_chunk))
    )
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + body + idat_full + iend


def test_read_image_refuses_decompression_bomb_from_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(100_000, 100_000))
    with pytest.raises(InputError, match=r"header claims 100000x100000 pixels"):
        read_image(path)
    # and the limit is the user's to set
    with pytest.raises(InputError, match="max_pixels=100"):
        read_image(np.zeros((20, 20)), max_pixels=100)


def test_read_image_refuses_bomb_in_jpeg_header(photo):
    buf = bytearray(_jpeg_bytes(photo))
    i = buf.find(b"\xff\xc0")
    buf[i + 5 : i + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(InputError, match="60000x60000"):
        read_image(bytes(buf))


def test_read_image_one_pixel_image_reads_and_min_size_refuses(tmp_path):
    path = tmp_path / "dot.png"
    path.write_bytes(_png_bytes(np.full((1, 1, 3), 255, np.uint8)))
    img = read_image(path)
    assert img.shape == (1, 1) and img[0, 0] == pytest.approx(1.0)
    assert read_image(path, size=(4, 4)).shape == (4, 4)
    with pytest.raises(InputError, match="smaller than the minimum 8x8"):
        read_image(path, min_size=(8, 8))


def test_read_image_16bit_png_scaled_to_unit_range(tmp_path):
    data = np.array([[0, 1000, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), data)
    img = read_image(path)
    np.testing.assert_allclose(img[0], data[0] / 65535.0, rtol=1e-6)


def test_read_image_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent -> white
    rgba[1, 0] = (0, 0, 0, 128)  # half black -> mid grey
    path = tmp_path / "alpha.png"
    path.write_bytes(_png_bytes(rgba))
    img = read_image(path, mode="rgb")
    np.testing.assert_allclose(img[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[1, 0], [1 - 128 / 255] * 3, atol=1e-3)


def test_read_image_palette_png(tmp_path):
    pal = Image.new("P", (3, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    pal.putdata([0, 1, 2])
    path = tmp_path / "palette.png"
    pal.save(path)
    img = read_image(path, mode="rgb")
    np.testing.assert_allclose(img[0], np.eye(3), atol=1e-6)


def test_read_image_cmyk_jpeg(tmp_path):
    rgb = Image.new("RGB", (16, 16), (200, 30, 40))
    path = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(path, quality=100)
    img = read_image(path, mode="rgb")
    assert img.shape == (16, 16, 3)
    np.testing.assert_allclose(
        img.mean(axis=(0, 1)), np.array([200, 30, 40]) / 255, atol=0.05
    )


def test_read_image_honours_exif_orientation(tmp_path, photo):
    pil = Image.fromarray(photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display needs a 90 degree clockwise turn
    path = tmp_path / "rotated.jpg"
    pil.save(path, exif=exif, quality=98)
    img = read_image(path, mode="rgb")
    assert img.shape == (40, 30, 3)
    # the red top-left corner of the stored image is now top-right
    assert img[:4, -4:, 0].mean() > 0.9 and img[:4, -4:, 1].mean() < 0.15
    assert read_image(path, mode="gray").shape == (40, 30)


def test_read_image_resize_exact_and_pad():
    img = np.ones((20, 40), np.float32)
    assert read_image(img, size=(10, 10)).shape == (10, 10)
    padded = read_image(img, size=(40, 40), resize="pad", pad_value=0.0)
    assert padded.shape == (40, 40)
    np.testing.assert_allclose(padded[:10], 0)  # band above the image
    np.testing.assert_allclose(padded[10:30], 1)
    np.testing.assert_allclose(padded[30:], 0)


@pytest.mark.parametrize(
    "array,reason",
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 3.0), r"must lie in \[0, 1\]"),
        (np.zeros((4, 4, 2)), "shape"),
        (np.zeros((0, 4)), "empty image"),
    ],
)
def test_read_image_bad_arrays(array, reason):
    with pytest.raises(InputError, match=reason):
        read_image(array)


def test_image_reader_raise_names_row_and_file(tmp_path, photo):
    good = tmp_path / "good.png"
    good.write_bytes(_png_bytes(photo))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    with pytest.raises(InputError, match=r"row 2 \(.*bad\.png\): empty file") as info:
        ImageReader().fit_transform([good, None, bad, good])
    assert info.value.row == 2


def test_image_reader_missing_mode_keeps_rows_and_records(tmp_path, photo):
    good = tmp_path / "good.png"
    good.write_bytes(_png_bytes(photo))
    items = [str(good), str(tmp_path / "gone.png"), None, b"garbage bytes", str(good)]
    reader = ImageReader(on_error="missing", size=(8, 8), n_jobs=2)
    with collect_item_errors() as errors:
        out = reader.fit_transform(items)
    assert len(out) == len(items)
    assert [o is None for o in out] == [False, True, True, True, False]
    assert [(e.row, e.source) for e in errors] == [
        (1, str(tmp_path / "gone.png")),
        (3, "bytes"),
    ]
    assert "not found" in errors[0].reason


def test_image_reader_parallel_matches_serial(rng):
    items = [(rng.random((32, 24, 3)) * 255).astype(np.uint8) for _ in range(12)]
    a = ImageReader(size=(16, 16), n_jobs=1).fit_transform(items)
    b = ImageReader(size=(16, 16), n_jobs=2).fit_transform(items)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_image_reader_reads_stack_of_images():
    stack = np.zeros((5, 8, 8), np.float32)
    assert len(ImageReader().fit_transform(stack)) == 5


def test_image_reader_refuses_ambiguous_2d_matrix():
    with pytest.raises(ParameterError, match="column of items"):
        ImageReader().fit_transform(np.zeros((4, 4)))


def test_image_reader_bad_size_parameter():
    with pytest.raises(
        ParameterError, match=r"size must be None or a \(height, width\)"
    ):
        ImageReader(size=(0, 8)).fit([])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"min_size": (8,)}, r"min_size must be None or a \(height, width\) pair"),
        ({"size": (8, 8.5)}, r"size must be None or a \(height, width\) pair"),
        ({"size": "8x8"}, "The 'size' parameter of ImageReader"),
        ({"pad_value": 2.0}, "The 'pad_value' parameter of ImageReader"),
        ({"dtype": "float64"}, "The 'dtype' parameter of ImageReader"),
    ],
)
def test_image_reader_bad_parameters_are_parameter_errors(params, match):
    with pytest.raises(ParameterError, match=match):
        ImageReader(**params).fit([])
    with pytest.raises(ParameterError, match=match):  # an unfitted reader too
        ImageReader(**params).transform([np.zeros((8, 8))])


def test_input_error_pickles_with_row_and_source():
    import pickle

    err = InputError("truncated JPEG", row=4, source="a.jpg")
    again = pickle.loads(pickle.dumps(err))
    assert (again.row, again.source, again.reason) == (4, "a.jpg", "truncated JPEG")
    assert str(again) == "row 4 (a.jpg): truncated JPEG"


def test_read_image_accepts_bytes_io_content(photo):
    buf = io.BytesIO(_png_bytes(photo)).getvalue()
    assert read_image(memoryview(buf)).shape == (30, 40)


def test_read_image_refuses_pipes_devices_and_symlink_loops(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(InputError, match="not a regular file"):
        read_image(fifo)
    if os.path.exists("/dev/zero"):  # reading it would never end
        with pytest.raises(InputError, match="not a regular file"):
            read_image("/dev/zero")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(InputError, match="looping symbolic link"):
        read_image(a)
    with pytest.raises(InputError, match="is a directory, not an image file"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    "ext,fmt",
    [
        (".bmp", "BMP"),
        (".jpg", "JPEG"),
        (".png", "PNG"),
        (".gif", "GIF"),
        (".webp", "WEBP"),
        (".tif", "TIFF"),
        (".ppm", "PNM"),
        (".pam", "PAM"),
        (".pfm", "PFM"),
        (".hdr", "HDR"),
        (".ras", "SUNRASTER"),
        (".jp2", "JPEG2000"),
        (".avif", "AVIF"),
    ],
)
def test_read_image_reads_size_of_every_opencv_format_from_its_header(ext, fmt, rng):
    from mmfeat.io import SUPPORTED_FORMATS
    from mmfeat.io._images import _header_size, sniff_image_format

    img = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    src = img.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else img
    buf = cv2.imencode(ext, src)[1].tobytes()
    assert sniff_image_format(buf) == fmt
    assert fmt in SUPPORTED_FORMATS  # one vocabulary: the sniffer's names
    assert _header_size(buf, fmt) == (48, 64)
    out = read_image(buf, mode="rgb")
    assert out.shape == (48, 64, 3) and out.dtype == np.float32


def test_read_image_max_file_bytes_refuses_large_files(tmp_path, photo):
    path = tmp_path / "photo.png"
    path.write_bytes(_png_bytes(photo))
    size = path.stat().st_size
    with pytest.raises(
        InputError,
        match=f"image file is {size:,} bytes .*, over max_file_bytes={size - 1:,}",
    ):
        read_image(path, max_file_bytes=size - 1)
    assert read_image(path, max_file_bytes=size).shape == (30, 40)
    assert read_image(path, max_file_bytes=None).shape == (30, 40)
    reader = ImageReader(max_file_bytes=size - 1, on_error="missing")
    with collect_item_errors() as errors:
        assert reader.fit_transform([path])[0] is None
    assert "max_file_bytes" in errors[0].reason
    with pytest.raises(ValueError, match="max_file_bytes"):
        ImageReader(max_file_bytes=0).fit([path])


def test_read_image_max_pixels_none_still_refuses_unknown_formats():
    with pytest.raises(InputError, match="unknown format"):
        read_image(b"\x00\x01" * 100, max_pixels=None)
    big = _png_claiming(30, 20)  # unreadable data, but a readable header
    with pytest.raises(InputError, match="cannot decode"):
        read_image(big, max_pixels=None)
