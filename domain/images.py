"""Seller images: what makes an upload acceptable, and the thumbnails made from it.

Pure computation on bytes (Pillow decodes in memory; nothing here reads or writes files). An
upload is accepted only if it decodes whole as one of the allowed formats within the size and
pixel limits (a decompression bomb is refused before it is decoded), and the scan hook passes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
from collections.abc import Iterable
from typing import Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from domain.errors import ValidationFailed

SIZES: tuple[int, ...] = (150, 300, 600, 1200)  # thumbnails' longest side, px
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# the scanners' standard test file (EICAR): a stand-in virus scan refuses it
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 10 << 20
    max_side: int = 10_000  # px
    max_pixels: int = 40_000_000  # a decompression bomb guard: width x height
    min_side: int = 50  # px: smaller is not a product photo


@dataclasses.dataclass(frozen=True)
class ImageFacts:
    sha256: str
    format: str  # JPEG | PNG | WEBP
    ext: str
    width: int
    height: int
    bytes: int


class Scanner(Protocol):
    """The virus-scan step: None if the file is clean, else why it is refused."""

    def __call__(self, data: bytes) -> str | None: ...


def signature_scan(data: bytes) -> str | None:
    """The stand-in scanner: refuses files carrying the EICAR test signature (as every
    scanner does), so the refusal path is real and tested. A deployment plugs a real scanner
    (e.g. clamd) in its place."""
    return "the virus scan refused it (EICAR test signature)" if EICAR in data else None


def inspect(data: bytes, limits: ImageLimits, scan: Scanner = signature_scan) -> ImageFacts:
    """The image's facts, or ValidationFailed naming `file` and the reason."""
    def refuse(why: str) -> ValidationFailed:
        return ValidationFailed({"file": why}, "not an acceptable image")

    if not data:
        raise refuse("is empty")
    if len(data) > limits.max_bytes:
        raise refuse(f"is larger than {limits.max_bytes} bytes")
    why = scan(data)
    if why is not None:
        raise refuse(why)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt, (w, h) = probe.format, probe.size
                if fmt not in FORMATS:
                    raise refuse(f"is {fmt or 'an unknown format'}: JPEG, PNG or WebP only")
                if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
                    raise refuse(f"is {w}x{h} px: at most {limits.max_side} px a side and "
                                 f"{limits.max_pixels:,} pixels")
                if min(w, h) < limits.min_side:
                    raise refuse(f"is {w}x{h} px: at least {limits.min_side} px a side")
                probe.verify()  # structure and checksums
            with Image.open(io.BytesIO(data)) as full:
                full.load()  # every pixel decodes (a truncated file fails here)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise refuse("has too many pixels (a decompression bomb?)") from exc
    except UnidentifiedImageError as exc:
        raise refuse("is not an image") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # what Pillow raises on broken files
        raise refuse(f"does not decode: {exc}") from exc
    return ImageFacts(hashlib.sha256(data).hexdigest(), fmt, FORMATS[fmt], w, h, len(data))


def thumbnails(data: bytes, sizes: Iterable[int] = SIZES) -> dict[int, bytes]:
    """JPEG renditions whose longest side is each size (never upscaled), oriented by EXIF,
    transparency over white."""
    with Image.open(io.BytesIO(data)) as src:
        img = ImageOps.exif_transpose(src)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            white = Image.new("RGB", img.size, (255, 255, 255))
            white.paste(img, mask=img.getchannel("A"))
            img = white
        elif img.mode != "RGB":
            img = img.convert("RGB")
        out = {}
        for size in sizes:
            copy = img.copy()
            copy.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            copy.save(buf, "JPEG", quality=85, optimize=True, progressive=True)
            out[size] = buf.getvalue()
        return out


def original_key(sha256: str, ext: str) -> str:
    return f"originals/{sha256}.{ext}"


def thumbnail_key(sha256: str, size: int) -> str:
    return f"{sha256}/{size}.jpg"
