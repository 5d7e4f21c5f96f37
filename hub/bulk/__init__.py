"""Bulk import (CSV through COPY) and export (alerts as CSV) for back-filling history and evaluation."""

from hub.bulk.export import export_alerts_csv
from hub.bulk.importer import (
    HEADERS,
    BulkImport,
    BulkImportError,
    ImportResult,
    RejectWriter,
    import_all,
    import_file,
    stale_days,
)

__all__ = [
    "HEADERS",
    "BulkImport",
    "BulkImportError",
    "ImportResult",
    "RejectWriter",
    "export_alerts_csv",
    "import_all",
    "import_file",
    "stale_days",
]
