"""Catalog writes and reads in PostgreSQL.

Every write is one transaction: the product row (version + 1), its variants and images, the
snapshot of the version it replaces, and the outbox event. Database errors are caught by class
and translated into the domain's errors at this boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from adapters.postgres import Conn, seller_accounts
from adapters.postgres.outbox import OUTBOX_CHANNEL
from adapters.postgres.pricing_admin import floors_above
from adapters.postgres.worker_lease import LeasedSnowflake
from domain.catalog import ImageIn, ProductIn, shop_path
from domain.errors import Conflict, Forbidden, NotFound, ValidationFailed, VersionConflict
from domain.sellers import hash_api_key

T = TypeVar("T")

_SNAPSHOT = """
INSERT INTO product_versions (product_id, version, snapshot)
SELECT p.product_id, p.version, jsonb_build_object(
    'product', to_jsonb(p),
    'variants', COALESCE((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.position)
                          FROM product_variants v WHERE v.product_id = p.product_id), '[]'),
    'images', COALESCE((SELECT jsonb_agg(to_jsonb(i) ORDER BY i.position)
                        FROM product_images i WHERE i.product_id = p.product_id), '[]'))
FROM products p WHERE p.product_id = $1
ON CONFLICT DO NOTHING
"""

_OUTBOX = f"""
WITH e AS (
    INSERT INTO outbox (event_type, aggregate_id, aggregate_version, payload)
    VALUES ($1, $2, $3, $4) RETURNING event_id)
SELECT pg_notify('{OUTBOX_CHANNEL}', event_id::text) FROM e
"""

_INSERT_VARIANTS = """
INSERT INTO product_variants (variant_id, product_id, sku, attributes, price_cents,
                              compare_price_cents, weight_grams, status, position)
SELECT u.variant_id, $1, u.sku, u.attributes::jsonb, u.price_cents, u.compare_price_cents,
       u.weight_grams, u.status::variant_status, u.position
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::int[],
            $8::text[], $9::smallint[])
     AS u(variant_id, sku, attributes, price_cents, compare_price_cents, weight_grams,
          status, position)
ON CONFLICT (variant_id) DO UPDATE SET
    sku = EXCLUDED.sku, attributes = EXCLUDED.attributes, price_cents = EXCLUDED.price_cents,
    compare_price_cents = EXCLUDED.compare_price_cents, weight_grams = EXCLUDED.weight_grams,
    status = EXCLUDED.status, position = EXCLUDED.position, price_synthetic = false
WHERE product_variants.product_id = EXCLUDED.product_id
"""

_INSERT_IMAGES = """
INSERT INTO product_images (product_id, variant_id, url, position, alt_text)
SELECT $1, u.variant_id, u.url, u.position, u.alt_text
FROM unnest($2::bigint[], $3::text[], $4::smallint[], $5::text[])
     AS u(variant_id, url, position, alt_text)
"""

_PRODUCTS = """
SELECT p.*, c.path AS category_path FROM products p
LEFT JOIN categories c USING (category_id) WHERE p.product_id = ANY($1::bigint[])
"""


def _iso(ts: Any) -> str | None:
    return ts.isoformat() if ts is not None else None


class CatalogRepository:
    def __init__(self, pool: asyncpg.Pool, ids: LeasedSnowflake) -> None:
        self.pool = pool
        self.ids = ids

    # -- sellers ---------------------------------------------------------------------------
    async def seller_for_key(self, api_key: str) -> tuple[int, str] | None:
        """(seller id, name) of an active seller's unrevoked key."""
        async with self.pool.acquire() as conn:
            return await seller_accounts.seller_for_key(conn, api_key)

    async def create_seller(self, name: str, api_key: str, rating: float | None = None) -> int:
        """Creates the seller, or gives the key's existing seller (idempotent by key)."""
        seller_id = self.ids.next_id()
        row = await self.pool.fetchrow(
            """INSERT INTO sellers (seller_id, name, api_key_hash, rating) VALUES ($1, $2, $3, $4)
               ON CONFLICT (api_key_hash) DO UPDATE SET name = EXCLUDED.name
               RETURNING seller_id""",
            seller_id, name, hash_api_key(api_key), rating,
        )
        assert row is not None
        return int(row["seller_id"])

    # -- writes ----------------------------------------------------------------------------
    async def create_product(self, seller_id: int, p: ProductIn) -> dict[str, Any]:
        await self.ids.ensure()
        product_id = self.ids.next_id()
        return await _retry_deadlocks(lambda: self._create(seller_id, product_id, p))

    async def _create(self, seller_id: int, product_id: int, p: ProductIn) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._check_references(conn, p, product_id, new=True)
            try:
                await conn.execute(
                    """INSERT INTO products (product_id, seller_id, external_id, title,
                           description, category_id, brand, status)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::product_status)""",
                    product_id, seller_id, p.external_id or str(product_id), p.title,
                    p.description, p.category_id, p.brand, p.status,
                )
                await self._write_children(conn, product_id, p, existing={})
            except asyncpg.UniqueViolationError as exc:
                raise _unique_conflict(exc) from exc
            await conn.execute(_OUTBOX, "product.created", product_id, 1,
                               {"product_id": str(product_id), "seller_id": str(seller_id),
                                "version": 1})
            return (await self._fetch(conn, [product_id]))[0]

    async def update_product(
        self, seller_id: int, product_id: int, p: ProductIn, expected_version: int
    ) -> dict[str, Any]:
        await self.ids.ensure()
        return await _retry_deadlocks(
            lambda: self._update(seller_id, product_id, p, expected_version)
        )

    async def _update(
        self, seller_id: int, product_id: int, p: ProductIn, expected_version: int
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            current = await self._lock_owned(conn, seller_id, product_id)
            if current["version"] != expected_version:
                raise VersionConflict(current["version"], expected_version)
            await self._check_references(conn, p, product_id)
            await conn.execute(_SNAPSHOT, product_id)
            rows = await conn.fetch(
                "SELECT variant_id, sku, price_cents FROM product_variants WHERE product_id = $1",
                product_id,
            )
            existing = {r["sku"]: int(r["variant_id"]) for r in rows}
            prices = {int(r["variant_id"]): int(r["price_cents"]) for r in rows}
            await _check_floors(conn, p, existing, prices)
            try:
                version = await conn.fetchval(
                    """UPDATE products SET external_id = COALESCE($2, external_id), title = $3,
                           description = $4, category_id = $5, brand = $6,
                           status = $7::product_status, version = version + 1, updated_at = now()
                       WHERE product_id = $1 RETURNING version""",
                    product_id, p.external_id, p.title, p.description, p.category_id, p.brand,
                    p.status,
                )
                await conn.execute("DELETE FROM product_images WHERE product_id = $1", product_id)
                await self._write_children(conn, product_id, p, existing, prices)
            except asyncpg.UniqueViolationError as exc:
                raise _unique_conflict(exc) from exc
            await conn.execute(_OUTBOX, "product.updated", product_id, version,
                               {"product_id": str(product_id), "seller_id": str(seller_id),
                                "version": version})
            return (await self._fetch(conn, [product_id]))[0]

    async def delete_product(
        self, seller_id: int, product_id: int, expected_version: int | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            current = await self._lock_owned(conn, seller_id, product_id)
            if expected_version is not None and current["version"] != expected_version:
                raise VersionConflict(current["version"], expected_version)
            await conn.execute(_SNAPSHOT, product_id)
            version = await conn.fetchval(
                """UPDATE products SET status = 'DELETED', version = version + 1,
                       updated_at = now() WHERE product_id = $1 RETURNING version""",
                product_id,
            )
            # its variants retired with it: their SKUs are free for new products
            await conn.execute("UPDATE product_variants SET status = 'INACTIVE' "
                               "WHERE product_id = $1 AND status = 'ACTIVE'", product_id)
            await conn.execute(_OUTBOX, "product.deleted", product_id, version,
                               {"product_id": str(product_id), "seller_id": str(seller_id),
                                "version": version})
            return {"product_id": str(product_id), "status": "DELETED", "version": version}

    async def change_images(
        self, seller_id: int, product_id: int, add: ImageIn | None, variant_id: int | None,
        remove_urls: list[str], also: Callable[[Conn], Awaitable[None]],
        max_images: int | None = None,
    ) -> int:
        """Adds an image and/or removes images (by url) as a new version of the product, with
        `also` (the upload's own rows) in the same transaction: snapshot, version + 1,
        outbox `product.updated`. The new version. An image the product shows already is not
        added again (nothing else to do: no new version); one beyond `max_images` is refused
        (422 naming `file`); urls to remove that the product does not show are left out
        (none left and nothing added: no new version)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock_owned(conn, seller_id, product_id)
            shown = [r["url"] for r in await conn.fetch(
                "SELECT url FROM product_images WHERE product_id = $1", product_id)]
            remove_urls = [u for u in remove_urls if u in shown]
            if add is not None:
                kept = [u for u in shown if u not in remove_urls]
                if add.url in kept:
                    add = None
                elif max_images is not None and len(kept) >= max_images:
                    raise ValidationFailed({"file": f"the product has {len(kept)} images: "
                                                    f"at most {max_images}"})
            if add is None and not remove_urls:
                await also(conn)
                return int(await conn.fetchval(
                    "SELECT version FROM products WHERE product_id = $1", product_id))
            await conn.execute(_SNAPSHOT, product_id)
            version = await conn.fetchval(
                "UPDATE products SET version = version + 1, updated_at = now() "
                "WHERE product_id = $1 RETURNING version", product_id)
            if remove_urls:
                await conn.execute(
                    "DELETE FROM product_images WHERE product_id = $1 AND url = ANY($2)",
                    product_id, remove_urls)
            if add is not None:
                await conn.execute(_INSERT_IMAGES, product_id, [variant_id], [add.url],
                                   [add.position or 0], [add.alt_text])
            await also(conn)
            await conn.execute(_OUTBOX, "product.updated", product_id, version,
                               {"product_id": str(product_id), "seller_id": str(seller_id),
                                "version": version})
            return int(version)

    async def image_urls(self, product_id: int) -> list[str]:
        """The urls of the images the product shows (one per image: a url may be twice)."""
        async with self.pool.acquire() as conn:
            return [r["url"] for r in await conn.fetch(
                "SELECT url FROM product_images WHERE product_id = $1", product_id)]

    async def owned(self, seller_id: int, product_id: int) -> None:
        """404 if there is no such product, 403 if it is another seller's."""
        async with self.pool.acquire() as conn:
            await self._lock_owned(conn, seller_id, product_id, lock=False)

    async def variant_of(self, product_id: int, sku: str) -> int:
        """The id of the product's variant with this SKU (ValidationFailed otherwise)."""
        found = await self.pool.fetchval(
            "SELECT variant_id FROM product_variants WHERE product_id = $1 AND sku = $2",
            product_id, sku)
        if found is None:
            raise ValidationFailed({"variant_sku": "no variant of this product has it"})
        return int(found)

    async def _lock_owned(
        self, conn: Conn, seller_id: int, product_id: int, lock: bool = True,
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT seller_id, version, status FROM products WHERE product_id = $1"
            + (" FOR UPDATE" if lock else ""), product_id,
        )
        if row is None or row["status"] == "DELETED":
            raise NotFound(f"product {product_id} not found")
        if row["seller_id"] != seller_id:
            raise Forbidden(f"product {product_id} belongs to another seller")
        return row

    async def _check_references(
        self, conn: Conn, p: ProductIn, product_id: int, new: bool = False
    ) -> None:
        fields: dict[str, str] = {}
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM categories WHERE category_id = $1)", p.category_id
        ):
            fields["category_id"] = f"unknown category {p.category_id}"
        paths = {i.url for i in p.images if shop_path(i.url)}
        if paths:  # uploads of this product (locked with it: a deletion waits for the write)
            uploaded = {r["url"] for r in await conn.fetch(
                """SELECT url FROM media_images WHERE product_id = $1 AND status = 'READY'
                   AND url = ANY($2::text[])""", product_id, sorted(paths))}
            upload = ("create the product first, then POST /api/v1/seller/products/{id}/"
                      "images" if new else
                      f"POST /api/v1/seller/products/{product_id}/images")
            for n, img in enumerate(p.images):
                if img.url in paths and img.url not in uploaded:
                    fields[f"images.{n}.url"] = (
                        f"names no image uploaded to this product ({upload} adds one; other images "
                        "need an absolute http(s) URL)")
        if fields:
            raise ValidationFailed(fields)
        taken = await conn.fetch(
            """SELECT sku FROM product_variants WHERE sku = ANY($1::text[])
               AND product_id <> $2 AND status = 'ACTIVE'""",
            [v.sku for v in p.variants if v.status == "ACTIVE"], product_id,
        )
        if taken:
            names = {r["sku"] for r in taken}
            raise Conflict(
                "SKU already used by another product",
                code="duplicate_sku",
                fields={f"variants.{i}.sku": f"SKU {v.sku!r} is already used by another product"
                        for i, v in enumerate(p.variants) if v.sku in names},
            )

    async def _write_children(
        self, conn: Conn, product_id: int, p: ProductIn, existing: dict[str, int],
        before: dict[int, int] | None = None,
    ) -> None:
        """Upserts variants (matched by SKU), retires variants left out, writes images."""
        new_ids = iter(self.ids.next_block(sum(v.sku not in existing for v in p.variants)))
        variant_ids = [existing.get(v.sku) or int(next(new_ids)) for v in p.variants]
        # rows in SKU order: concurrent writers lock unique-index entries in the same order
        order = sorted(range(len(p.variants)), key=lambda i: p.variants[i].sku)
        vs = [p.variants[i] for i in order]
        written = await conn.execute(
            _INSERT_VARIANTS, product_id, [variant_ids[i] for i in order], [v.sku for v in vs],
            [json.dumps(v.attributes) for v in vs], [v.price_cents for v in vs],
            [v.compare_price_cents for v in vs], [v.weight_grams for v in vs],
            [v.status for v in vs], order,
        )
        if written != f"INSERT 0 {len(vs)}":  # an id of another product: never overwrite it
            raise RuntimeError(f"variant upsert wrote {written!r} of {len(vs)} rows")
        before = before or {}  # list prices before the update (variant id -> cents)
        moved = [(vid, before[vid], v.price_cents) for vid, v in
                 zip((variant_ids[i] for i in order), vs, strict=True)
                 if vid in before and before[vid] != v.price_cents]
        if moved:  # every list price change is in the history (dynamic ones: pricing_repo)
            await conn.execute(
                """INSERT INTO price_history (variant_id, old_cents, new_cents, reason)
                   SELECT u.v, u.o, u.n, 'seller'
                   FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(v, o, n)""",
                [m[0] for m in moved], [m[1] for m in moved], [m[2] for m in moved])
        retired = [vid for sku, vid in existing.items() if sku not in {v.sku for v in vs}]
        if retired:
            await conn.execute(
                "UPDATE product_variants SET status = 'INACTIVE' WHERE variant_id = ANY($1)",
                retired,
            )
        by_sku = dict(zip([v.sku for v in p.variants], variant_ids, strict=True))
        imgs = p.images
        await conn.execute(
            _INSERT_IMAGES, product_id,
            [by_sku[i.variant_sku] if i.variant_sku else None for i in imgs],
            [i.url for i in imgs],
            [i.position if i.position is not None else n for n, i in enumerate(imgs)],
            [i.alt_text for i in imgs],
        )

    # -- reads -----------------------------------------------------------------------------
    async def get_product(self, seller_id: int, product_id: int) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            found = await self._fetch(conn, [product_id])
        if not found or found[0]["status"] == "DELETED":
            raise NotFound(f"product {product_id} not found")
        if found[0]["seller_id"] != str(seller_id):
            raise Forbidden(f"product {product_id} belongs to another seller")
        return found[0]

    async def list_products(
        self, seller_id: int, status: str | None, limit: int, before: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        async with self.pool.acquire() as conn:
            ids = await conn.fetch(
                """SELECT product_id FROM products WHERE seller_id = $1
                   AND status <> 'DELETED' AND ($2::product_status IS NULL OR status = $2)
                   AND ($3::bigint IS NULL OR product_id < $3)
                   ORDER BY product_id DESC LIMIT $4""",
                seller_id, status, before, limit + 1,
            )
            page = [int(r["product_id"]) for r in ids[:limit]]
            products = await self._fetch(conn, page)
        return products, (page[-1] if len(ids) > limit else None)

    async def _fetch(self, conn: Conn, ids: list[int]) -> list[dict[str, Any]]:
        """Products with variants and images, in the order of `ids`."""
        if not ids:
            return []
        products = await conn.fetch(_PRODUCTS, ids)
        variants = await conn.fetch(
            """SELECT * FROM product_variants WHERE product_id = ANY($1::bigint[])
               ORDER BY product_id, status, position""",
            ids,
        )
        images = await conn.fetch(
            """SELECT * FROM product_images WHERE product_id = ANY($1::bigint[])
               ORDER BY product_id, position, image_id""",
            ids,
        )
        out = {int(p["product_id"]): _product_json(p) for p in products}
        for v in variants:
            out[int(v["product_id"])]["variants"].append(_variant_json(v))
        for i in images:
            out[int(i["product_id"])]["images"].append(_image_json(i))
        return [out[i] for i in ids if i in out]

    async def category_tree(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT category_id, parent_id, name, path, depth FROM categories ORDER BY depth, name"
        )
        nodes: dict[int, dict[str, Any]] = {}
        roots: list[dict[str, Any]] = []
        for r in rows:
            node = {"category_id": r["category_id"], "name": r["name"],
                    "parent_id": r["parent_id"], "path": list(r["path"]), "children": []}
            nodes[r["category_id"]] = node
            parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
            (parent["children"] if parent else roots).append(node)
        return roots

    async def warehouses(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT warehouse_id, name, region FROM warehouses ORDER BY warehouse_id"
        )
        return [dict(r) for r in rows]


async def _retry_deadlocks(attempt: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """Re-runs a whole write transaction that lost a deadlock or serialization race."""
    for n in range(tries):
        try:
            return await attempt()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            if n == tries - 1:
                raise Conflict("concurrent writes collided; retry",
                               code="concurrent_write") from exc
            await asyncio.sleep(0.01 * (n + 1))
        except asyncpg.StringDataRightTruncationError as exc:
            raise ValidationFailed({"body": "a text field is longer than allowed"}) from exc
    raise AssertionError("unreachable")


def _unique_conflict(exc: asyncpg.UniqueViolationError) -> Conflict:
    constraint = exc.constraint_name or ""
    if "sku" in constraint:
        return Conflict("SKU already used by another product", code="duplicate_sku",
                        fields={"variants": "a SKU is already used by another product"})
    if "external_id" in constraint:
        return Conflict("you already have a product with this external_id",
                        code="duplicate_external_id",
                        fields={"external_id": "already used by another of your products"})
    return Conflict("conflicts with an existing record", code="conflict")


def _product_json(p: asyncpg.Record) -> dict[str, Any]:
    return {
        "product_id": str(p["product_id"]),
        "seller_id": str(p["seller_id"]),
        "external_id": p["external_id"],
        "title": p["title"],
        "description": p["description"],
        "category_id": p["category_id"],
        "category_path": list(p["category_path"] or []),
        "brand": p["brand"],
        "status": p["status"],
        "version": p["version"],
        "created_at": _iso(p["created_at"]),
        "updated_at": _iso(p["updated_at"]),
        "variants": [],
        "images": [],
    }


def _variant_json(v: asyncpg.Record) -> dict[str, Any]:
    return {
        "variant_id": str(v["variant_id"]),
        "sku": v["sku"],
        "attributes": v["attributes"],
        "price_cents": v["price_cents"],
        "compare_price_cents": v["compare_price_cents"],
        "weight_grams": v["weight_grams"],
        "status": v["status"],
    }


def _image_json(i: asyncpg.Record) -> dict[str, Any]:
    return {
        "image_id": str(i["image_id"]),
        "url": i["url"],
        "position": i["position"],
        "alt_text": i["alt_text"],
        "variant_id": str(i["variant_id"]) if i["variant_id"] is not None else None,
    }


async def _check_floors(conn: Conn, p: ProductIn, existing: dict[str, int],
                        prices: dict[int, int]) -> None:
    """A variant's price, when it changes, never below its dynamic pricing rule's floor (the
    lowest unit price the platform lets it sell at): 422 naming the variant's price. An
    unchanged price is left alone (the seller can edit the rest of a product whose floor
    was raised above its price)."""
    asked = {existing[v.sku]: (i, v.price_cents) for i, v in enumerate(p.variants)
             if v.sku in existing and prices.get(existing[v.sku]) != v.price_cents}
    low = await floors_above(conn, {v: price for v, (_, price) in asked.items()})
    if low:
        raise ValidationFailed({f"variants.{asked[v][0]}.price_cents":
                                f"below the variant's price floor ({floor} cents)"
                                for v, floor in low.items()}, "price below its floor")
