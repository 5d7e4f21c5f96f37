"""Request dependencies: a pooled database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

# How long a request waits for a pooled connection before the API answers 503.
CONNECTION_TIMEOUT_S = 5.0


def get_pool(request: Request) -> ConnectionPool:
    """The application's connection pool, opened by its lifespan."""
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(pool: Annotated[ConnectionPool, Depends(get_pool)]) -> Iterator[psycopg.Connection[Any]]:
    """A connection from the pool for the duration of one request."""
    with pool.connection(timeout=CONNECTION_TIMEOUT_S) as conn:
        yield conn


DbConn = Annotated[psycopg.Connection[Any], Depends(get_conn)]
DbPool = Annotated[ConnectionPool, Depends(get_pool)]
