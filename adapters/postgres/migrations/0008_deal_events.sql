-- Search documents carry the effective price (list -> deal -> dynamic, at the buy box), so
-- whatever changes a deal must reach the index builder:
-- 1. a deal written, changed or removed: a `deal.changed` outbox event from a trigger (deals
--    have no API of their own yet; rows are written directly, and the trigger catches every
--    way in), with the scopes before and after;
-- 2. a deal starting or ending: nothing is written then, so the builder looks for deals whose
--    start or end has passed since its last look (`deals_checked_until`, committed with it).

CREATE FUNCTION deal_changed() RETURNS trigger AS $$
DECLARE
    scopes JSONB := '[]'::jsonb;
    id BIGINT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        scopes := scopes || jsonb_build_array(jsonb_build_object(
            'scope', OLD.scope, 'value', OLD.scope_value));
        id := OLD.deal_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        scopes := scopes || jsonb_build_array(jsonb_build_object(
            'scope', NEW.scope, 'value', NEW.scope_value));
        id := NEW.deal_id;
    END IF;
    INSERT INTO outbox (event_type, aggregate_id, payload)
    VALUES ('deal.changed', id, jsonb_build_object('scopes', scopes));
    PERFORM pg_notify('aisle_outbox', id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deals_changed AFTER INSERT OR UPDATE OR DELETE ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_changed();

CREATE INDEX deals_starts_idx ON deals (starts_at);
CREATE INDEX deals_ends_idx ON deals (ends_at);

ALTER TABLE outbox_consumers ADD COLUMN deals_checked_until TIMESTAMPTZ;
