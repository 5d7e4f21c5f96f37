"""The hub's database for the CLI's commands: the URL given, else the hub's settings or embedded server."""

from __future__ import annotations


def database_url(explicit: str | None) -> str:
    """``explicit``, else ``ANJU_DATABASE_URL``, else the embedded PostgreSQL under the hub's home.

    The hub is imported here, not at module level: ``anju agent`` on a gateway has no hub installed.
    """
    from hub.settings import HubSettings
    from hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    return explicit or resolve_database_url(settings.database_url, settings.home)
