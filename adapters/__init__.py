"""Adapters: PostgreSQL (asyncpg, migrations), Redis, embedded servers, loaders, settings."""
