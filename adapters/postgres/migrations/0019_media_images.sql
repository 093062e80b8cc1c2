-- Seller image uploads (serve/media.py): the original and thumbnails are in object storage,
-- keyed by the content's SHA-256; this row tracks one upload to one product. Only a READY
-- image is in product_images (and so on product pages and in search): an upload that stops
-- midway leaves nothing visible.
CREATE TABLE media_images (
    image_id    VARCHAR(32) PRIMARY KEY,
    product_id  BIGINT NOT NULL REFERENCES products (product_id),
    sha256      CHAR(64) NOT NULL,
    format      VARCHAR(8) NOT NULL,
    ext         VARCHAR(8) NOT NULL,
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    bytes       INTEGER NOT NULL CHECK (bytes > 0),
    variant_id  BIGINT REFERENCES product_variants (variant_id),
    alt_text    VARCHAR(300) NOT NULL DEFAULT '',
    position    SMALLINT NOT NULL DEFAULT 0,
    status      VARCHAR(12) NOT NULL DEFAULT 'PROCESSING'
                CHECK (status IN ('PROCESSING', 'READY', 'FAILED')),
    error       TEXT,
    url         VARCHAR(500),           -- the product_images url, once READY
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ready_at    TIMESTAMPTZ,
    UNIQUE (product_id, sha256)
);
CREATE INDEX media_images_sha_idx ON media_images (sha256);
