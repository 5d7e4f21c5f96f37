"""Bulk import (CSV through COPY) and export (alerts as CSV) for back-filling history and evaluation.

``load`` runs an import; ``parse`` (pure) reads files and recognises canonical readings, ``copy_binary``
(pure) encodes them for COPY BINARY; ``checks`` holds the SQL checks, the authority on reject reasons;
``report`` writes the progress bar and the reject file. Partition loading and swapping belong to
``anju.hub.storage.timeseries``.
"""

from anju.hub.bulk.export import export_alerts_csv
from anju.hub.bulk.load import BulkImport, ImportResult, import_all, import_file, stale_days
from anju.hub.bulk.parse import HEADERS, BulkImportError
from anju.hub.bulk.report import RejectWriter

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
