-- Seller API keys beyond the one a seller was made with: several at a time (rotation with
-- overlap), each revocable. Only the SHA-256 of a key is kept; `prefix` tells keys apart.
CREATE TABLE seller_api_keys (
    key_id      VARCHAR(24) PRIMARY KEY,
    seller_id   BIGINT NOT NULL REFERENCES sellers (seller_id),
    key_hash    BYTEA NOT NULL UNIQUE,
    prefix      VARCHAR(12) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX seller_api_keys_seller_idx ON seller_api_keys (seller_id);
