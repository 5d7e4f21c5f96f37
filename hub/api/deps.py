"""Request dependencies: a pooled database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool


def get_pool(request: Request) -> ConnectionPool:
    """The application's connection pool, opened by its lifespan."""
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection from the pool for the duration of one request (PoolTimeout, hence 503, if none comes)."""
    timeout: float = request.app.state.pool_timeout_s
    with get_pool(request).connection(timeout=timeout) as conn:
        yield conn


DbConn = Annotated[psycopg.Connection[Any], Depends(get_conn)]
DbPool = Annotated[ConnectionPool, Depends(get_pool)]
