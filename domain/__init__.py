"""Pure domain code: no I/O, no Ray. Catalog model and validation, Snowflake ids, errors."""
