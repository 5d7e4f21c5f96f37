"""Errors of hub ingest."""


class IngestError(Exception):
    """Base of everything hub ingest raises on purpose."""


class WriterError(IngestError):
    """The batch writer was used on a connection or schema it cannot work with."""
