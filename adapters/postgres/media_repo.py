"""Uploaded images' rows (`media_images`); making one visible goes through the catalog's
write path (CatalogRepository.change_images: version + 1, snapshot, outbox)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from adapters.postgres import Conn
from domain.errors import NotFound
from domain.images import ImageFacts


@dataclasses.dataclass(frozen=True)
class MediaImage:
    image_id: str
    product_id: int
    sha256: str
    ext: str
    width: int
    height: int
    bytes: int
    variant_id: int | None
    alt_text: str
    position: int
    status: str
    error: str | None
    url: str | None
    created_at: datetime


_COLUMNS = """image_id, product_id, sha256, ext, width, height, bytes, variant_id, alt_text,
              position, status, error, url, created_at"""


def _row(r: object) -> MediaImage:
    return MediaImage(**{f.name: r[f.name] for f in dataclasses.fields(MediaImage)})  # type: ignore[index]


async def record(conn: Conn, image_id: str, product_id: int, facts: ImageFacts,
                 variant_id: int | None, alt_text: str, position: int) -> MediaImage:
    """The upload's row (the one already there for the same bytes on this product: a retry
    is the same image)."""
    await conn.execute(
        """INSERT INTO media_images (image_id, product_id, sha256, format, ext, width, height,
                                      bytes, variant_id, alt_text, position)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (product_id, sha256) DO NOTHING""",
        image_id, product_id, facts.sha256, facts.format, facts.ext, facts.width, facts.height,
        facts.bytes, variant_id, alt_text, position)
    found = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM media_images WHERE product_id = $1 AND sha256 = $2",
        product_id, facts.sha256)
    assert found is not None
    return _row(found)


async def get(conn: Conn, product_id: int, image_id: str) -> MediaImage:
    found = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM media_images WHERE product_id = $1 AND image_id = $2",
        product_id, image_id)
    if found is None:
        raise NotFound(f"product {product_id} has no image {image_id}")
    return _row(found)


async def of_product(conn: Conn, product_id: int) -> list[MediaImage]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM media_images WHERE product_id = $1 "
        "ORDER BY position, created_at, image_id", product_id)
    return [_row(r) for r in rows]


async def mark_ready(conn: Conn, image_id: str, url: str) -> bool:
    """Whether the upload's row was there to mark (False: deleted meanwhile)."""
    return await conn.fetchval(
        "UPDATE media_images SET status = 'READY', url = $2, error = NULL, ready_at = now() "
        "WHERE image_id = $1 RETURNING true", image_id, url) is not None


async def describe(conn: Conn, image_id: str, variant_id: int | None, alt_text: str,
                   position: int) -> bool:
    """What an upload says of its image (a re-upload of it says it again); whether the row
    was there (False: deleted meanwhile)."""
    return await conn.fetchval(
        "UPDATE media_images SET variant_id = $2, alt_text = $3, position = $4 "
        "WHERE image_id = $1 RETURNING true", image_id, variant_id, alt_text,
        position) is not None


async def mark_failed(conn: Conn, image_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE media_images SET status = 'FAILED', error = $2 WHERE image_id = $1 "
        "AND status <> 'READY'", image_id, error[:2000])


async def remove(conn: Conn, image_id: str) -> None:
    await conn.execute("DELETE FROM media_images WHERE image_id = $1", image_id)


async def sha_in_use(conn: Conn, sha256: str) -> bool:
    """Whether any upload (of any product) still has these bytes (their files are shared)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM media_images WHERE sha256 = $1)", sha256))
