from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from acme_assets import decode_base64
from acme_assets.actions import (
    average_hash,
    compare_hashes,
    content_hash,
    image_info,
    make_thumbnail,
)
from PIL import Image, ImageDraw
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

ACTIONS = (
    "assets.image_info",
    "assets.make_thumbnail",
    "assets.content_hash",
    "assets.average_hash",
    "assets.compare_hashes",
)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> str:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return base64.b64encode(out.getvalue()).decode("ascii")


def picture(width: int = 320, height: int = 200, mode: str = "RGB") -> Image.Image:
    """A picture with structure: a light left half, a dark right half and a disc."""
    image = Image.new(mode, (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 2, 0, width, height), fill="black")
    draw.ellipse((width // 8, height // 4, width // 8 + height // 2, 3 * height // 4), fill="red")
    return image


def load(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_image_info_reads_format_size_and_hash():
    b64 = encode(picture())
    out = run(image_info, {"image_base64": b64})
    raw = base64.b64decode(b64)
    assert (out.format, out.mime_type, out.width, out.height) == ("PNG", "image/png", 320, 200)
    assert (out.mode, out.has_alpha, out.frames, out.orientation) == ("RGB", False, 1, None)
    assert (out.size_bytes, out.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())


def test_image_info_sees_alpha_frames_and_exif_orientation():
    rgba = run(
        image_info, {"image_base64": "data:image/png;base64," + encode(picture(mode="RGBA"))}
    )
    assert rgba.has_alpha
    frames = [picture(40, 40), picture(40, 40).rotate(90)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    animated = run(image_info, {"image_base64": base64.b64encode(gif.getvalue()).decode()})
    assert (animated.format, animated.frames) == ("GIF", 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    jpeg = run(image_info, {"image_base64": encode(picture(), "JPEG", exif=exif)})
    assert (jpeg.format, jpeg.orientation) == ("JPEG", 6)


def test_thumbnail_fits_the_box_keeps_aspect_and_slugs_the_name():
    out = run(
        make_thumbnail,
        {
            "image_base64": encode(picture(800, 600)),
            "max_width": 200,
            "max_height": 200,
            "filename": "Été à Paris (final).PNG",
        },
    )
    thumb = load(out.image_base64)
    assert (thumb.format, thumb.size) == ("JPEG", (200, 150))
    assert (out.width, out.height, out.mime_type) == (200, 150, "image/jpeg")
    assert out.file_name == "ete-a-paris-final-200x150.jpg"
    assert out.size_bytes == len(base64.b64decode(out.image_base64))


def test_thumbnail_applies_exif_orientation_and_never_enlarges():
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = run(make_thumbnail, {"image_base64": encode(picture(400, 200), "JPEG", exif=exif)})
    assert (upright.width, upright.height) == (128, 256)  # the stored landscape is a portrait
    small = run(make_thumbnail, {"image_base64": encode(picture(50, 40)), "format": "png"})
    assert (small.width, small.height) == (50, 40)
    assert small.file_name.endswith("-50x40.png")
    assert len(small.file_name.split("-")[0]) == 12  # no filename: the content hash's prefix


def test_thumbnail_flattens_transparency_for_jpeg_and_keeps_it_for_webp():
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    jpeg = load(run(make_thumbnail, {"image_base64": encode(clear), "format": "jpeg"}).image_base64)
    assert jpeg.mode == "RGB"
    assert jpeg.getpixel((10, 10)) == (255, 255, 255)
    webp = load(run(make_thumbnail, {"image_base64": encode(clear), "format": "webp"}).image_base64)
    assert webp.format == "WEBP"
    assert webp.mode == "RGBA"


def test_content_hash_and_storage_key():
    raw = b"any bytes at all, not only images"
    b64 = base64.b64encode(raw).decode()
    out = run(content_hash, {"data_base64": b64, "extension": "txt"})
    digest = hashlib.sha256(raw).hexdigest()
    assert (out.hexdigest, out.size_bytes) == (digest, len(raw))
    assert out.storage_key == f"{digest[:2]}/{digest[2:4]}/{digest}.txt"
    blake = run(content_hash, {"data_base64": b64, "algorithm": "blake2b"})
    assert blake.hexdigest == hashlib.blake2b(raw).hexdigest()


def test_average_hash_survives_resizing_and_recompression_but_not_a_new_picture():
    original = picture(640, 400)
    resized = original.resize((160, 100))
    a = run(average_hash, {"image_base64": encode(original)})
    b = run(average_hash, {"image_base64": encode(resized, "JPEG", quality=60)})
    other = run(
        average_hash, {"image_base64": encode(original.transpose(Image.Transpose.ROTATE_180))}
    )
    assert a.bits == 64
    assert len(a.hash) == 16
    near = run(compare_hashes, {"a": a.hash, "b": b.hash})
    far = run(compare_hashes, {"a": a.hash, "b": other.hash})
    assert near.similar
    assert near.distance <= 4
    assert not far.similar
    assert far.distance > 20
    big = run(average_hash, {"image_base64": encode(original), "hash_size": 16})
    assert (big.bits, len(big.hash)) == (256, 64)


def test_decode_base64_accepts_wrapped_lines():
    raw = bytes(range(256)) * 3
    wrapped = base64.encodebytes(raw).decode()  # 76-character lines
    assert decode_base64(wrapped) == raw


@pytest.mark.parametrize(
    ("act", "data", "field", "message"),
    [
        (image_info, {"image_base64": "not base64!!"}, "image_base64", "not valid base64"),
        (
            image_info,
            {"image_base64": base64.b64encode(b"plain text, no image").decode()},
            "image_base64",
            "not an image",
        ),
        (
            image_info,
            {"image_base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()},
            "image_base64",
            "",
        ),
        (make_thumbnail, {"image_base64": encode(picture()), "max_width": 4000}, "max_width", ""),
        (make_thumbnail, {"image_base64": encode(picture()), "format": "gif"}, "format", ""),
        (content_hash, {"data_base64": ""}, "data_base64", ""),
        (content_hash, {"data_base64": "AA=A"}, "data_base64", "not valid base64"),
        (content_hash, {"data_base64": "AAAA", "algorithm": "md5"}, "algorithm", ""),
        (average_hash, {"image_base64": encode(picture()), "hash_size": 2}, "hash_size", ""),
        (compare_hashes, {"a": "ff00ff00", "b": "ff00"}, "b", "has 4 hex digits but a has 8"),
        (compare_hashes, {"a": "FFZZ", "b": "ffff"}, "a", ""),
    ],
)
def test_bad_input_names_the_field(act, data, field, message):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert message in str(info.value)


def test_oversized_payload_is_refused_before_decoding():
    too_big = "A" * (14 * 1024 * 1024 + 8192)
    with pytest.raises(InvalidInputError) as info:
        run(content_hash, {"data_base64": too_big})
    assert [e.loc for e in info.value.errors] == ["data_base64"]


def test_too_many_pixels_is_refused():
    # A 7000x7000 PNG of one colour is tiny on the wire but 49 megapixels decoded.
    b64 = encode(Image.new("L", (7000, 7000)))
    with pytest.raises(InvalidInputError) as info:
        run(image_info, {"image_base64": b64})
    assert "more than the limit" in str(info.value)


def test_call_action_through_an_in_memory_registry():
    with use_registry(make_registry(compare_hashes)):
        out = call_action("assets.compare_hashes", {"a": "ff00", "b": "ff01", "threshold": 0})
    assert (out.distance, out.similar) == (1, False)


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-assets"
    assert registry.resolve("assets.make_thumbnail") is make_thumbnail


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("assets.make_thumbnail") == "media"
