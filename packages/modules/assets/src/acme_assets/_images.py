"""Image decoding with limits, thumbnails, and hashes, on Pillow."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_BYTES: Final = 10 * 1024 * 1024  # decoded image size
MAX_PIXELS: Final = 40_000_000  # width * height; a decompression-bomb guard
FORMATS: Final = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
_DATA_URL: Final = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.ASCII)

ThumbFormat = Literal["png", "jpeg", "webp"]


class ImageError(ValueError):
    """Bytes that are not an acceptable image."""


def decode_base64(value: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """Strict base64 (a ``data:...;base64,`` prefix allowed) of at most ``max_bytes`` bytes."""
    text = _DATA_URL.sub("", value.strip(), count=1)
    text = "".join(text.split())  # line-wrapped base64 is common
    if len(text) > (max_bytes + 2) // 3 * 4:
        raise ValueError(f"decodes to more than {max_bytes} bytes (the limit)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64 (A-Z a-z 0-9 + / with = padding)") from None
    if not raw:
        raise ValueError("decodes to no bytes")
    return raw


def open_image(raw: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageFile.ImageFile:
    """Open ``raw`` as one of :data:`FORMATS`, checking its pixel count before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=FORMATS)
    except UnidentifiedImageError:
        accepted = ", ".join(FORMATS)
        raise ImageError(f"is not an image Pillow can read (accepted: {accepted})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"is too large to decode safely ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"is {width}x{height} pixels, more than the limit of {max_pixels}")
    return image


def check_image(raw: bytes) -> None:
    """Raise :class:`ImageError` unless ``raw`` is a structurally sound image within limits."""
    image = open_image(raw)
    try:
        image.verify()
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ImageError(f"is a damaged {image.format} image ({exc})") from None


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    width: int
    height: int
    mime_type: str


def _flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB, with any transparency composited over ``background``."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def thumbnail(
    raw: bytes, *, max_width: int, max_height: int, fmt: ThumbFormat, quality: int
) -> Thumbnail:
    """A thumbnail fitting ``max_width`` x ``max_height``, upright (EXIF orientation applied),
    aspect ratio kept, never enlarged."""
    with open_image(raw) as source:
        image = ImageOps.exif_transpose(source)
        image.thumbnail((max_width, max_height), Image.Resampling.LANCZOS)
        if fmt == "jpeg":
            image = _flatten(image)
        elif image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        options: dict[str, int | bool] = {"optimize": True}
        if fmt in ("jpeg", "webp"):
            options["quality"] = quality
        image.save(out, format=fmt.upper(), **options)
    return Thumbnail(out.getvalue(), image.width, image.height, f"image/{fmt}")


def average_hash(raw: bytes, *, hash_size: int = 8) -> str:
    """The perceptual average hash: ``hash_size``² bits (pixel brighter than the mean), in hex.

    Near-identical pictures (resized, recompressed) get hashes a few bits apart.
    """
    with open_image(raw) as source:
        small = _flatten(ImageOps.exif_transpose(source)).convert("L")
        small = small.resize((hash_size, hash_size), Image.Resampling.BOX)
        pixels = list(small.tobytes())  # mode "L": one byte per pixel
    mean = sum(pixels) / len(pixels)
    bits = 0
    for value in pixels:
        bits = (bits << 1) | (1 if value > mean else 0)
    return f"{bits:0{(hash_size * hash_size + 3) // 4}x}"


def hamming_distance(a: str, b: str) -> int:
    """How many bits two equal-length hex hashes differ in."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length ({len(a)} and {len(b)} hex digits)")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def storage_key(digest: str, extension: str = "") -> str:
    """A content-addressed object key: ``ab/cd/abcd....ext``."""
    suffix = f".{extension}" if extension else ""
    return f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
