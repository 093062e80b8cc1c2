-- A SKU is unique among the variants on sale (ACTIVE), no longer among every variant ever
-- written: a deleted product's variants (retired with it from now on) and the variants a
-- write left out (INACTIVE) no longer keep their SKUs from the sellers' new products. A
-- retired variant brought back on sale (a write or restore naming its SKU again) is refused
-- 409 duplicate_sku while another product's variant on sale has that SKU.
UPDATE product_variants v SET status = 'INACTIVE'
FROM products p
WHERE p.product_id = v.product_id AND p.status = 'DELETED' AND v.status = 'ACTIVE';
ALTER TABLE product_variants DROP CONSTRAINT IF EXISTS product_variants_sku_key;
CREATE UNIQUE INDEX IF NOT EXISTS product_variants_live_sku
    ON product_variants (sku) WHERE status = 'ACTIVE';
