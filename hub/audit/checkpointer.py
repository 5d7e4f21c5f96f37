"""A background thread of the hub that checkpoints the audit chain's head every few seconds."""

from __future__ import annotations

import logging
import threading

import psycopg

from anju.hub.audit.checkpoint import CheckpointError, CheckpointLog
from anju.hub.audit.store import take_checkpoint

log = logging.getLogger(__name__)


class AuditCheckpointer:
    """Takes a checkpoint every ``interval_s`` (only when the head moved); logs a damaged chain once."""

    def __init__(
        self, *, database_url: str, checkpoints: CheckpointLog, key: bytes, interval_s: float
    ) -> None:
        self._url = database_url
        self._log = checkpoints
        self._key = key
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="anju-audit-checkpoint", daemon=True)
        self.problem: str | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Take a last checkpoint and stop."""
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while True:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._url, autocommit=False)
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                outcome = take_checkpoint(conn, self._log, key=self._key)
                conn.rollback()
                if outcome.problem != self.problem:
                    if outcome.problem:
                        log.error("audit chain does not follow its last checkpoint: %s", outcome.problem)
                    else:
                        log.info("audit chain follows its checkpoints again")
                    self.problem = outcome.problem
            except (psycopg.Error, CheckpointError, OSError) as err:
                log.warning("audit checkpoint failed, will retry: %s", err)
                if conn is not None:
                    conn.close()
                conn = None
            if self._stop.wait(self._interval):
                break
        if conn is not None:
            conn.close()
