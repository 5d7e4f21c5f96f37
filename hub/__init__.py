"""anju hub: ingest, storage, detection, cases, tenancy filing and the inspector API/UI."""
