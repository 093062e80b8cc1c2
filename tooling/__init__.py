"""Tooling around the service, not part of it: the demo launcher (`scripts/demo`), the load
generator and CPU accounting every `scripts/bench_*` uses, and the catalog-load benchmark."""
