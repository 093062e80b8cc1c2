"""Seller images: what is accepted (decoded whole, within limits, scanned) and the
thumbnails made."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from domain.errors import ValidationFailed
from domain.images import EICAR, ImageLimits, inspect, thumbnails

LIMITS = ImageLimits()


def picture(fmt: str = "PNG", size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size)
    if mode == "RGB":  # something that is not flat, so encoders work for it
        img.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256)
                     for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def refusal(data: bytes, limits: ImageLimits = LIMITS) -> str:
    with pytest.raises(ValidationFailed) as err:
        inspect(data, limits)
    return err.value.fields["file"]


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_real_images_are_accepted_with_their_facts(fmt: str, ext: str) -> None:
    data = picture(fmt)
    facts = inspect(data, LIMITS)
    assert (facts.format, facts.ext, facts.width, facts.height, facts.bytes) == (
        fmt, ext, 640, 480, len(data))
    assert facts.sha256 == inspect(data, LIMITS).sha256 and len(facts.sha256) == 64


def test_what_is_refused_and_why() -> None:
    assert refusal(b"") == "is empty"
    assert refusal(b"hello, not a picture at all") == "is not an image"
    jpeg = picture("JPEG")
    assert refusal(jpeg[: len(jpeg) // 2]).startswith("does not decode")  # truncated
    assert "JPEG, PNG or WebP only" in refusal(picture("GIF"))
    assert "at least 50 px" in refusal(picture("PNG", (40, 400)))
    assert "larger than 1000 bytes" in refusal(jpeg, ImageLimits(max_bytes=1000))
    assert "virus scan" in refusal(picture() + EICAR)
    assert "at most 10000 px a side" in refusal(picture("PNG", (12_000, 60), mode="1"))


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    bomb = picture("PNG", (7_000, 7_000), mode="1")  # 49 M pixels in a few KB
    assert len(bomb) < 100_000
    assert "40,000,000 pixels" in refusal(bomb)
    # with ours lifted, Pillow's own guard still refuses a bigger one (its error, no crash)
    huge = picture("PNG", (15_000, 15_000), mode="1")
    assert "decompression bomb" in refusal(huge, ImageLimits(max_side=100_000,
                                                             max_pixels=10**12))


def test_thumbnails_fit_each_size_and_never_upscale() -> None:
    made = thumbnails(picture("PNG", (800, 400)))
    assert sorted(made) == [150, 300, 600, 1200]
    sizes = {s: Image.open(io.BytesIO(b)).size for s, b in made.items()}
    assert sizes == {150: (150, 75), 300: (300, 150), 600: (600, 300), 1200: (800, 400)}
    assert all(Image.open(io.BytesIO(b)).format == "JPEG" for b in made.values())
    rgba = thumbnails(picture("PNG", (300, 300), mode="RGBA"), (150,))
    assert Image.open(io.BytesIO(rgba[150])).getpixel((5, 5)) == (255, 255, 255)  # on white
