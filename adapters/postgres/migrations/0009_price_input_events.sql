-- Offers (the buy box) and dynamic pricing rules change what listings show, like deals
-- (0008): a row trigger writes a `price.changed` outbox event for the product of each offer
-- or rule written, changed or removed (both products when a row moves to another variant).
-- Row triggers do not see TRUNCATE: rebuild the index after one.

CREATE FUNCTION variant_price_input_changed() RETURNS trigger AS $$
DECLARE
    variants BIGINT[];
    variant BIGINT;
    product BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        variants := ARRAY[OLD.variant_id];
    ELSIF TG_OP = 'UPDATE' AND OLD.variant_id <> NEW.variant_id THEN
        variants := ARRAY[OLD.variant_id, NEW.variant_id];
    ELSE
        variants := ARRAY[NEW.variant_id];
    END IF;
    FOREACH variant IN ARRAY variants LOOP
        SELECT product_id INTO product FROM product_variants WHERE variant_id = variant;
        IF product IS NOT NULL THEN
            INSERT INTO outbox (event_type, aggregate_id, payload)
            VALUES ('price.changed', product, jsonb_build_object(
                'product_id', product::text, 'variant_id', variant::text,
                'reason', TG_TABLE_NAME));
            PERFORM pg_notify('aisle_outbox', product::text);
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER offers_changed AFTER INSERT OR UPDATE OR DELETE ON offers
    FOR EACH ROW EXECUTE FUNCTION variant_price_input_changed();
CREATE TRIGGER dynamic_price_rules_changed AFTER INSERT OR UPDATE OR DELETE ON dynamic_price_rules
    FOR EACH ROW EXECUTE FUNCTION variant_price_input_changed();

-- deal scopes by brand are matched case-insensitively (adapters/postgres/search_docs.py)
CREATE INDEX products_brand_lower_idx ON products (lower(brand));
