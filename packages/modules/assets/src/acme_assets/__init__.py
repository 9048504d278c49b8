"""Image assets for Switchyard: thumbnails, metadata, content and perceptual hashes (Pillow).

The actions live in :mod:`acme_assets.actions`. Importing this package imports Pillow.
"""

from __future__ import annotations

from acme_assets._images import (
    MAX_BYTES,
    MAX_PIXELS,
    ImageError,
    average_hash,
    decode_base64,
    hamming_distance,
    open_image,
    storage_key,
    thumbnail,
)

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageError",
    "average_hash",
    "decode_base64",
    "hamming_distance",
    "open_image",
    "storage_key",
    "thumbnail",
]
