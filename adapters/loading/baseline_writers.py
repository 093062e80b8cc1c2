"""Other ways to write the loader's frames, for tooling.bench_load to compare COPY CSV (the
loader's CatalogWriter) against: COPY binary from Python tuples, and row-by-row INSERTs (the
baseline). Not used by the product."""

from __future__ import annotations

import pyarrow as pa

from adapters.loading.writer import COPY_TIMEOUT_S, TABLES, CatalogWriter


class RecordsWriter(CatalogWriter):
    """COPY in binary format from Python tuples (needs a connection without text codecs)."""

    async def put(self, name: str, t: pa.Table) -> None:
        if t.num_rows:
            table_name, columns = TABLES[name]
            records = list(zip(*(t[c].to_pylist() for c in columns), strict=True))
            await self.conn.copy_records_to_table(table_name, records=records, columns=columns,
                                                  timeout=COPY_TIMEOUT_S)
            self.counts[name] += t.num_rows


class InsertWriter(CatalogWriter):
    """Row-by-row INSERT ... VALUES through executemany (the baseline)."""

    async def put(self, name: str, t: pa.Table) -> None:
        if t.num_rows:
            table_name, columns = TABLES[name]
            marks = ", ".join(f"${i}::text::jsonb" if c == "attributes" else f"${i}"
                              for i, c in enumerate(columns, 1))
            sql = f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})"
            rows = list(zip(*(t[c].to_pylist() for c in columns), strict=True))
            await self.conn.executemany(sql, rows, timeout=COPY_TIMEOUT_S)
            self.counts[name] += t.num_rows
