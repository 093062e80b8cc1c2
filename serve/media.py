"""Seller image uploads: validate by decoding, scan, keep the original, make thumbnails in
Ray tasks, then show the image (a new product version, through the outbox to search and
product pages).

Idempotent: the same bytes uploaded again to the same product are the same image (its id
derives from them), whatever step the first try reached; a retry finishes what it did not.
A crash midway leaves the image PROCESSING and invisible (product_images only ever holds READY
ones), and the next upload of it carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from typing import TypedDict

import asyncpg

from actors.thumbnailer import make_thumbnails
from adapters.media_store import ObjectStore
from adapters.postgres import Conn, media_repo
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.media_repo import MediaImage
from domain.catalog import ImageIn
from domain.errors import AisleError, NotFound, ValidationFailed
from domain.images import SIZES, ImageLimits, inspect, original_key, thumbnail_key

log = logging.getLogger("aisle.media")
DISPLAY_SIZE = 600  # the rendition product pages and search show


class MediaJson(TypedDict):
    image_id: str
    product_id: str
    status: str  # PROCESSING | READY | FAILED
    error: str | None
    width: int
    height: int
    bytes: int
    variant_id: str | None
    alt_text: str
    position: int
    url: str | None  # the one product pages show, once READY
    thumbnails: dict[str, str]  # size -> URL (each exists once READY)


@dataclasses.dataclass
class MediaService:
    pool: asyncpg.Pool
    catalog: CatalogRepository
    store: ObjectStore  # a directory or an S3 bucket (adapters/media_store.open_store)
    base_url: str  # where thumbnails are served (aisle's /media, or a CDN)
    limits: ImageLimits
    max_images: int = 20  # per product (AISLE_MAX_IMAGES), as the product API's
    _running: dict[str, asyncio.Task[MediaImage]] = dataclasses.field(default_factory=dict)

    def urls(self, sha256: str) -> dict[str, str]:
        return {str(s): f"{self.base_url}/{thumbnail_key(sha256, s)}" for s in SIZES}

    def as_json(self, m: MediaImage) -> MediaJson:
        return {"image_id": m.image_id, "product_id": str(m.product_id), "status": m.status,
                "error": m.error, "width": m.width, "height": m.height, "bytes": m.bytes,
                "variant_id": str(m.variant_id) if m.variant_id is not None else None,
                "alt_text": m.alt_text, "position": m.position, "url": m.url,
                "thumbnails": self.urls(m.sha256)}

    async def upload(self, seller_id: int, product_id: int, data: bytes, alt_text: str,
                     variant_sku: str | None, position: int, wait: bool) -> MediaImage:
        await self.catalog.owned(seller_id, product_id)
        variant_id = (await self.catalog.variant_of(product_id, variant_sku)
                      if variant_sku else None)
        facts = await asyncio.to_thread(inspect, data, self.limits)  # 422 naming `file`
        shown = await self.catalog.image_urls(product_id)
        if (len(shown) >= self.max_images
                and self.urls(facts.sha256)[str(DISPLAY_SIZE)] not in shown):
            raise ValidationFailed({"file": f"the product has {len(shown)} images: "
                                            f"at most {self.max_images}"})
        await self.store.put(original_key(facts.sha256, facts.ext), data)
        image_id = "i" + hashlib.sha256(f"{product_id}:{facts.sha256}".encode()).hexdigest()[:24]
        async with self.pool.acquire() as conn:
            row = await media_repo.record(conn, image_id, product_id, facts, variant_id,
                                          alt_text, position)
        if row.status == "READY":
            # shown, or (removed from the product by a write since) shown again as this
            # upload describes it
            return await self._show(seller_id, row, variant_id, alt_text, position)
        task = self._running.get(row.image_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._finish(seller_id, row))
            self._running[row.image_id] = task
            task.add_done_callback(lambda _: self._running.pop(row.image_id, None))
        if wait:
            return await asyncio.shield(task)
        return row

    async def _finish(self, seller_id: int, row: MediaImage) -> MediaImage:
        """Thumbnails (Ray tasks), then the image shown: one transaction."""
        try:
            await make_thumbnails(self.store.config, row.sha256, row.ext)
        except Exception as exc:
            log.warning("thumbnails of %s failed: %r", row.image_id, exc)
            async with self.pool.acquire() as conn:
                await media_repo.mark_failed(conn, row.image_id, f"thumbnails: {exc!r}")
                return await media_repo.get(conn, row.product_id, row.image_id)
        url = self.urls(row.sha256)[str(DISPLAY_SIZE)]

        async def ready(conn: Conn) -> None:
            if not await media_repo.mark_ready(conn, row.image_id, url):
                # deleted while its thumbnails were made: the product does not show it
                raise NotFound(f"image {row.image_id} was deleted")

        try:
            await self.catalog.change_images(
                seller_id, row.product_id,
                ImageIn.model_construct(url=url, position=row.position, alt_text=row.alt_text,
                                        variant_sku=None),
                row.variant_id, [], ready, self.max_images)
        except AisleError as exc:  # deleted meanwhile, or another upload took the last place
            why = (exc.fields.get("file") if isinstance(exc, ValidationFailed) else None
                   ) or exc.message
            async with self.pool.acquire() as conn:
                await media_repo.mark_failed(conn, row.image_id, why)
        async with self.pool.acquire() as conn:
            try:
                return await media_repo.get(conn, row.product_id, row.image_id)
            except NotFound:  # deleted meanwhile: a waiting upload is told so
                return dataclasses.replace(row, status="FAILED", error="deleted meanwhile")

    async def _show(self, seller_id: int, row: MediaImage, variant_id: int | None,
                    alt_text: str, position: int) -> MediaImage:
        """A READY upload uploaded again: the product shows it (a new version if it did
        not), and the upload's row says what this upload says of it."""
        assert row.url is not None
        if row.url in await self.catalog.image_urls(row.product_id):
            return row  # the same upload again (a retry): the same image, as it was

        async def described(conn: Conn) -> None:
            if not await media_repo.describe(conn, row.image_id, variant_id, alt_text,
                                             position):
                raise NotFound(f"image {row.image_id} was deleted")  # meanwhile: not shown

        await self.catalog.change_images(
            seller_id, row.product_id,
            ImageIn.model_construct(url=row.url, position=position, alt_text=alt_text,
                                    variant_sku=None),
            variant_id, [], described, self.max_images)
        async with self.pool.acquire() as conn:
            return await media_repo.get(conn, row.product_id, row.image_id)

    async def list(self, seller_id: int, product_id: int) -> list[MediaImage]:
        await self.catalog.owned(seller_id, product_id)
        async with self.pool.acquire() as conn:
            return await media_repo.of_product(conn, product_id)

    async def get(self, seller_id: int, product_id: int, image_id: str) -> MediaImage:
        await self.catalog.owned(seller_id, product_id)
        async with self.pool.acquire() as conn:
            return await media_repo.get(conn, product_id, image_id)

    async def delete(self, seller_id: int, product_id: int, image_id: str) -> int:
        """Removes the image from the product (a new version, if the product shows it) and
        its row, then its files unless another upload has the same bytes. The product's
        version. An upload still PROCESSING is never shown after (its thumbnails, once
        made, find no row to mark ready)."""
        m = await self.get(seller_id, product_id, image_id)

        async def gone(conn: Conn) -> None:
            await media_repo.remove(conn, image_id)

        # the url it is shown at once ready (it may have become ready since it was read), and
        # the one it was shown at (under an earlier AISLE_MEDIA_BASE_URL)
        urls = sorted({self.urls(m.sha256)[str(DISPLAY_SIZE)]} | ({m.url} if m.url else set()))
        version = await self.catalog.change_images(seller_id, product_id, None, None, urls,
                                                   gone)
        async with self.pool.acquire() as conn:
            shared = await media_repo.sha_in_use(conn, m.sha256)
        if not shared:
            await self.store.delete([original_key(m.sha256, m.ext)] +
                                    [thumbnail_key(m.sha256, s) for s in SIZES])
        return version
