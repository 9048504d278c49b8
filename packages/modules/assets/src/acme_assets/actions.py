"""The assets actions: ``assets.image_info``, ``assets.make_thumbnail``,
``assets.content_hash``, ``assets.average_hash``, ``assets.compare_hashes``.

Images travel as base64 text (``image_base64``; a ``data:image/...;base64,`` prefix is
accepted). Input validation decodes it and opens the image's header, so that bad base64, an
oversized payload or something that is not an image is an input error on that field, raised in
the caller before any job is queued.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Annotated, Final, Literal

from acme_text import slugify
from PIL import ExifTags
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from switchyard import action

from acme_assets._images import (
    MAX_BYTES,
    ThumbFormat,
    check_image,
    decode_base64,
    hamming_distance,
    open_image,
    storage_key,
    thumbnail,
)
from acme_assets._images import (
    average_hash as ahash,
)

_MAX_B64: Final = (MAX_BYTES + 2) // 3 * 4 + 4096  # room for a data: prefix and line breaks
_EXTENSIONS: Final = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp",
                      "BMP": "bmp", "TIFF": "tif"}  # fmt: skip


def _check_bytes(value: str) -> str:
    decode_base64(value)
    return value


def _check_image(value: str) -> str:
    check_image(decode_base64(value))
    return value


Base64Data = Annotated[str, Field(min_length=4, max_length=_MAX_B64), AfterValidator(_check_bytes)]
Base64Image = Annotated[str, Field(min_length=4, max_length=_MAX_B64), AfterValidator(_check_image)]
HexHash = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[0-9a-f]+$")]


class ImageInfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: Base64Image


class ImageInfoOut(BaseModel):
    format: str
    mime_type: str
    width: int
    height: int
    mode: str
    has_alpha: bool
    frames: int
    orientation: int | None
    size_bytes: int
    sha256: str


@action("assets.image_info", description="Format, size, mode, frames, EXIF orientation, sha256.")
def image_info(data: ImageInfoIn) -> ImageInfoOut:
    raw = decode_base64(data.image_base64)
    with open_image(raw) as image:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        fmt = image.format or "unknown"
        return ImageInfoOut(
            format=fmt,
            mime_type=image.get_format_mimetype() or "application/octet-stream",
            width=image.width,
            height=image.height,
            mode=image.mode,
            has_alpha=image.has_transparency_data,
            frames=getattr(image, "n_frames", 1),
            orientation=int(orientation) if orientation is not None else None,
            size_bytes=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
        )


class MakeThumbnailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: Base64Image
    max_width: int = Field(default=256, ge=16, le=2048)
    max_height: int = Field(default=256, ge=16, le=2048)
    format: ThumbFormat = "jpeg"
    quality: int = Field(default=85, ge=1, le=95)
    filename: str | None = Field(default=None, min_length=1, max_length=255)


class MakeThumbnailOut(BaseModel):
    image_base64: str
    width: int
    height: int
    mime_type: str
    size_bytes: int
    file_name: str


@action(
    "assets.make_thumbnail",
    description="A thumbnail within a box (upright, aspect kept) and a slugged file name.",
)
def make_thumbnail(data: MakeThumbnailIn) -> MakeThumbnailOut:
    raw = decode_base64(data.image_base64)
    thumb = thumbnail(
        raw,
        max_width=data.max_width,
        max_height=data.max_height,
        fmt=data.format,
        quality=data.quality,
    )
    stem = os.path.splitext(data.filename)[0] if data.filename else ""
    base = slugify(stem, max_length=60) or hashlib.sha256(raw).hexdigest()[:12]
    extension = "jpg" if data.format == "jpeg" else data.format
    return MakeThumbnailOut(
        image_base64=base64.b64encode(thumb.data).decode("ascii"),
        width=thumb.width,
        height=thumb.height,
        mime_type=thumb.mime_type,
        size_bytes=len(thumb.data),
        file_name=f"{base}-{thumb.width}x{thumb.height}.{extension}",
    )


class ContentHashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_base64: Base64Data
    algorithm: Literal["sha256", "sha512", "blake2b", "sha3_256"] = "sha256"
    extension: str = Field(default="", max_length=10, pattern=r"^[a-z0-9]*$")


class ContentHashOut(BaseModel):
    algorithm: str
    hexdigest: str
    size_bytes: int
    storage_key: str


@action(
    "assets.content_hash",
    description="A cryptographic hash of any bytes, and a content-addressed storage key.",
)
def content_hash(data: ContentHashIn) -> ContentHashOut:
    raw = decode_base64(data.data_base64)
    digest = hashlib.new(data.algorithm, raw).hexdigest()
    return ContentHashOut(
        algorithm=data.algorithm,
        hexdigest=digest,
        size_bytes=len(raw),
        storage_key=storage_key(digest, data.extension),
    )


class AverageHashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: Base64Image
    hash_size: int = Field(default=8, ge=4, le=16)


class AverageHashOut(BaseModel):
    hash: str
    bits: int


@action(
    "assets.average_hash",
    description="The perceptual average hash of an image (near-duplicates differ by few bits).",
)
def average_hash(data: AverageHashIn) -> AverageHashOut:
    value = ahash(decode_base64(data.image_base64), hash_size=data.hash_size)
    return AverageHashOut(hash=value, bits=data.hash_size * data.hash_size)


class CompareHashesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: HexHash
    b: HexHash
    threshold: int = Field(default=10, ge=0, le=256)

    @field_validator("b")
    @classmethod
    def _same_length(cls, value: str, info: ValidationInfo) -> str:
        a = info.data.get("a")
        if a is not None and len(a) != len(value):
            raise ValueError(f"has {len(value)} hex digits but a has {len(a)}")
        return value


class CompareHashesOut(BaseModel):
    distance: int
    similar: bool


@action(
    "assets.compare_hashes",
    description="Hamming distance of two perceptual hashes, and whether it is within a threshold.",
)
def compare_hashes(data: CompareHashesIn) -> CompareHashesOut:
    distance = hamming_distance(data.a, data.b)
    return CompareHashesOut(distance=distance, similar=distance <= data.threshold)
