"""The hub's database for the CLI's commands: the URL given, else the hub's settings or embedded server."""

from __future__ import annotations


def database_url(explicit: str | None) -> str:
    """``explicit``, else ``ANJU_DATABASE_URL``, else the embedded PostgreSQL under the hub's home.

    The hub is imported here, not at module level: ``anju agent`` on a gateway has no hub installed.
    """
    from anju.hub.settings import HubSettings
    from anju.hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    return explicit or resolve_database_url(settings.database_url, settings.home)


def recreate_database(server_url: str, name: str) -> str:
    """Drop ``name`` on ``server_url``'s server if it exists, create it empty, and return its URL."""
    import psycopg

    admin = psycopg.conninfo.make_conninfo(server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)
