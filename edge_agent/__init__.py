"""anju edge agent: polls an estate's meters and gates, keeps records in a durable outbox, ships them."""

__version__ = "0.1.0"
