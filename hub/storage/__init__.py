"""The hub's storage: one module owns the schema and the TimescaleDB/plain-PostgreSQL difference."""

from anju.hub.storage.errors import SchemaError, StorageError
from anju.hub.storage.schema import StorageInfo, choose_backend, ensure_schema, upsert_units
from anju.hub.storage.timeseries import (
    TIME_TABLES,
    TimescalePolicy,
    drop_partitions_older_than,
    ensure_months,
    ensure_partitions,
    list_partitions,
    timescale_sql,
)

__all__ = [
    "TIME_TABLES",
    "SchemaError",
    "StorageError",
    "StorageInfo",
    "TimescalePolicy",
    "choose_backend",
    "drop_partitions_older_than",
    "ensure_months",
    "ensure_partitions",
    "ensure_schema",
    "list_partitions",
    "timescale_sql",
    "upsert_units",
]
