"""Errors of the storage layer."""


class StorageError(Exception):
    """Base of everything the storage layer raises on purpose."""


class SchemaError(StorageError):
    """The schema cannot be created or does not have the expected form."""
