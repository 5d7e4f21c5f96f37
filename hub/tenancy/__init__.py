"""The city tenancy system: an HTTP client and the durable outbox that files cases through it."""
