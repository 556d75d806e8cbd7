"""Reading and writing images without trusting them. OpenCV is never handed a path (a name
that is not UTF-8 crashes it, a FIFO hangs it): files are read here, as bytes, under a size
limit, and decoded with cv2.imdecode. Before anything is decoded, the image's own header is
read for its width and height, and an image over the pixel limit is refused: a 1 MB PNG can
declare 20000x20000 pixels, and OpenCV would allocate 1.2 GB for it before reading a byte of
the pixels. Only formats whose header is checked here are decoded at all."""
from __future__ import annotations

import os
import struct
import sys
import threading

import cv2
import numpy as np

from loop.errors import UserError
from loop.safe_files import read_input, shown, write_atomically

MAX_IMAGE_BYTES = 64 << 20
# e.g. 7300x5470: 120 MB once decoded; reading one (PNG, JPEG or TIFF) peaks at ~290 MB
# resident, measured, against 2.4 GB for the 20000x20000 PNG a 1.2 MB file can declare.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 1 << 15
FORMATS = "PNG, JPEG, BMP, WebP or TIFF"
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageHeaderError(ValueError):
    """The bytes are not an image whose size could be read from its header."""


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header of a PNG, JPEG, BMP, WebP or TIFF; the size the
    decoder will allocate for. ImageHeaderError for anything else."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            return _bmp_size(data)
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except (struct.error, IndexError):
        raise ImageHeaderError("its header is cut short") from None
    raise ImageHeaderError(f"not a {FORMATS} image")


def _png_size(data: bytes) -> tuple[int, int]:
    length, kind, width, height = struct.unpack_from(">I4sII", data, 8)
    if kind != b"IHDR" or length != 13:
        raise ImageHeaderError("a PNG whose first chunk is not its header")
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """The first frame header (SOFn), found as the decoder does: segment by segment."""
    at = 2
    while True:
        if data[at] != 0xFF:
            raise ImageHeaderError("a JPEG whose segments do not follow each other")
        while data[at] == 0xFF:
            at += 1
        marker = data[at]
        at += 1
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):
            raise ImageHeaderError("a JPEG without a frame header")
        (length,) = struct.unpack_from(">H", data, at)
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack_from(">HH", data, at + 3)
            return width, height
        if length < 2:
            raise ImageHeaderError("a JPEG segment of impossible length")
        at += length


def _bmp_size(data: bytes) -> tuple[int, int]:
    (header,) = struct.unpack_from("<I", data, 14)
    if header == 12:  # the OS/2 header: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)  # a negative height is a top-down image


def _webp_size(data: bytes) -> tuple[int, int]:
    kind = data[12:16]
    if kind == b"VP8X":
        low_w, high_w, low_h, high_h = struct.unpack_from("<HBHB", data, 24)
        return (low_w | high_w << 16) + 1, (low_h | high_h << 16) + 1
    if kind == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
    if kind == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise ImageHeaderError("a WebP of an unknown kind")


_TIFF_TAGS = {256: "width", 257: "height", 258: "bits", 277: "samples", 278: "rows",
              322: "tile_width", 323: "tile_height"}
_TIFF_SMALL_TILES = 512 * 512   # tiles may overhang a small page: 256x256 on a 10x10 one


def _tiff_size(data: bytes) -> tuple[int, int]:
    """The first page's size. The decoder also allocates a strip or a tile at once, of a size
    the file states apart from the page's: it may not be larger than the page."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, ifd)
    found = {}
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, kind, n = struct.unpack_from(order + "HHI", data, at)
        if tag in _TIFF_TAGS and kind in (3, 4) and 1 <= n <= 8:
            fmt = order + ("H" if kind == 3 else "I") * n
            where = at + 8 if struct.calcsize(fmt) <= 4 else \
                struct.unpack_from(order + "I", data, at + 8)[0]
            found[_TIFF_TAGS[tag]] = max(struct.unpack_from(fmt, data, where))
    width, height = found.get("width", 0), found.get("height", 0)
    tile = (found.get("tile_width", width),
            found.get("tile_height", min(found.get("rows", height), height)))
    if tile[0] * tile[1] > max(width * height, _TIFF_SMALL_TILES):
        raise ImageHeaderError(f"a TIFF whose tiles ({tile[0]}x{tile[1]}) are larger than "
                               f"its page ({width}x{height})")
    if found.get("bits", 8) > 16 or found.get("samples", 3) > 4:
        raise ImageHeaderError("a TIFF of more than 4 channels or 16 bits a channel")
    return width, height


def check_size(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    if width < 1 or height < 1:
        raise ImageHeaderError(f"its header gives an empty size ({width}x{height})")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > max_pixels:
        raise ImageHeaderError(f"{width}x{height} pixels is over the limit of "
                               f"{max_pixels / 1e6:g} megapixels")


def decode_rgb(data: bytes, what: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """uint8 RGB (h, w, 3) from an image file's bytes, its size checked first; UserError
    naming `what` otherwise."""
    try:
        check_size(*image_size(data), max_pixels)
    except ImageHeaderError as exc:
        raise UserError(f"{what}: {exc}") from None
    bgr = _quietly(cv2.imdecode, np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"{what}: not an image OpenCV can decode (damaged?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)


def _quietly(decode, *args):
    """A damaged file makes OpenCV log details, and libpng and libjpeg print their own, on
    stderr: lines that do not name the file, before the caller's one line that does. OpenCV
    is told to be silent; the codecs' stderr is pointed at /dev/null for the decode, but
    only while this is the only thread, so no other thread's message can be lost."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    hidden = threading.active_count() == 1 and _point_stderr_at(os.devnull)
    try:
        return decode(*args)
    finally:
        if hidden:
            os.dup2(hidden, 2)
            os.close(hidden)
        cv2.utils.logging.setLogLevel(level)


def _point_stderr_at(path: str) -> int | None:
    """Descriptor 2 now writes to `path`; returns a copy of the old one to restore."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return None
    target = os.open(path, os.O_WRONLY)
    os.dup2(target, 2)
    os.close(target)
    return saved


def read_rgb(path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """uint8 RGB from an image file: a regular file of at most MAX_IMAGE_BYTES, its size
    checked before decoding. UserError naming the file otherwise."""
    data = read_input(path, MAX_IMAGE_BYTES, "picture")
    return decode_rgb(data, shown(os.fsdecode(path)), max_pixels)


def encode_png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return encoded.tobytes()


def write_png(path, rgb: np.ndarray, replace: bool = False) -> None:
    """A PNG written through a temporary file in its folder (see safe_files); OSError when
    it cannot be written, FileExistsError when something is there and not `replace`."""
    data = encode_png(rgb)
    write_atomically(path, lambda f: f.write(data), replace=replace)


def folder_image(data, what: str, size) -> np.ndarray | None:
    """An image file's bytes (None: it could not be read) as uint8 RGB of `size` (height,
    width: the base's input), or None when they are not an image that decodes."""
    if data is None:
        return None
    try:
        rgb = decode_rgb(data, what)
    except UserError:
        return None
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def read_folder_image(path, size) -> np.ndarray:
    """A data folder's image file (a regular file, never a link, at most its byte limit) as
    uint8 RGB of `size`; a UserError naming the file says why not."""
    from loop.store.data_folder import read_image_bytes
    rgb = decode_rgb(read_image_bytes(path), shown(str(path)))
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def load_folder_image(path, size) -> np.ndarray | None:
    """As read_folder_image, or None when the file is not an image that can be read."""
    try:
        return read_folder_image(path, size)
    except UserError:
        return None
