"""Seller image uploads (multipart) and the images themselves, served with long cache
headers (content-addressed: a URL never changes what it shows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import FileResponse

from domain.catalog import SKU_PATTERN, fitted_line
from domain.errors import NotFound, ValidationFailed
from serve.media import MediaJson
from serve.services import Json, Seller, Svc, limit_seller

router = APIRouter(tags=["seller"])
ProductPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake product id")]
ImagePath = Annotated[str, Path(pattern=r"^i[0-9a-f]{24}$")]
CACHE_FOREVER = "public, max-age=31536000, immutable"


@router.post("/api/v1/seller/products/{product_id}/images", status_code=202,
             dependencies=[Depends(limit_seller)], response_model=None)
async def upload_image(
    svc: Svc, seller_id: Seller, product_id: ProductPath, response: Response,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
    alt_text: Annotated[str, Form(max_length=300)] = "",
    variant_sku: Annotated[str | None, Form(max_length=64)] = None,
    position: Annotated[int, Form(ge=0, le=1000)] = 0,
    wait: Annotated[bool, Query(description="answer when the thumbnails are made")] = False,
) -> MediaJson:
    """Validated by decoding it (format, size, pixel limits, decompression bombs: 422 naming
    `file`), scanned, stored; thumbnails (150/300/600/1200 px) are made by Ray tasks, then the
    image joins the product (a new version: search and product pages follow). 202 while
    PROCESSING (`?wait=true`: 201 when READY). The same bytes again: the same image."""
    bad: dict[str, str] = {}  # the text rules of a product's images (domain.catalog)
    try:  # its length once normalized, as a product's image (NFC can lengthen a text)
        alt_text = fitted_line(alt_text, 300)
    except ValueError as exc:
        bad["alt_text"] = str(exc)
    if variant_sku is not None and not SKU_PATTERN.fullmatch(variant_sku):
        bad["variant_sku"] = "must be a variant's SKU: 1-64 of letters, digits, . _ - /"
    if bad:
        raise ValidationFailed(bad)
    data = await file.read(svc.settings.image_max_bytes + 1)
    if len(data) > svc.settings.image_max_bytes:
        raise ValidationFailed({"file": f"is larger than {svc.settings.image_max_bytes} bytes"})
    m = await svc.media.upload(seller_id, product_id, data, alt_text, variant_sku, position,
                               wait)
    if m.status == "READY":
        response.status_code = 201
    elif m.status == "FAILED":
        response.status_code = 200
    return svc.media.as_json(m)


@router.get("/api/v1/seller/products/{product_id}/images",
            dependencies=[Depends(limit_seller)])
async def list_images(svc: Svc, seller_id: Seller, product_id: ProductPath) -> Json:
    """The product's uploads: PROCESSING, READY (with their URLs) or FAILED (with why)."""
    return {"images": [svc.media.as_json(m)
                       for m in await svc.media.list(seller_id, product_id)]}


@router.get("/api/v1/seller/products/{product_id}/images/{image_id}",
            dependencies=[Depends(limit_seller)], response_model=None)
async def get_image(svc: Svc, seller_id: Seller, product_id: ProductPath,
                    image_id: ImagePath) -> MediaJson:
    return svc.media.as_json(await svc.media.get(seller_id, product_id, image_id))


@router.delete("/api/v1/seller/products/{product_id}/images/{image_id}",
               dependencies=[Depends(limit_seller)])
async def delete_image(svc: Svc, seller_id: Seller, product_id: ProductPath,
                       image_id: ImagePath) -> Json:
    """The image leaves the product (a new version) and its files are removed."""
    version = await svc.media.delete(seller_id, product_id, image_id)
    return {"image_id": image_id, "deleted": True, "version": version}


@router.get("/media/{sha256}/{name}", include_in_schema=False)
async def media_file(svc: Svc, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
                     name: Annotated[str, Path(pattern=r"^[0-9]{2,4}\.jpg$")]) -> Response:
    """A thumbnail: from its file (LocalStore), or its bytes from the store (S3Store; a CDN at
    AISLE_MEDIA_BASE_URL takes this traffic off the Gateway)."""
    store, key = svc.media.store, f"{sha256}/{name}"
    headers = {"Cache-Control": CACHE_FOREVER}
    path = store.path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such image")
        return FileResponse(path, media_type="image/jpeg", headers=headers)
    try:
        data = await store.get(key)
    except FileNotFoundError:
        raise NotFound("no such image") from None
    return Response(data, media_type="image/jpeg", headers=headers)
