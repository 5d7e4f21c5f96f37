"""The audit chain: appends verify, every kind of tampering is named at its sequence number, writers race."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from anju.cli import main as anju
from hub.audit.errors import AuditKeyError
from hub.audit.keys import AuditSettings, resolve_audit_key
from hub.audit.store import verify
from hub.cases.audit import deferred_audit, record_audit
from hub.storage import ensure_schema

KEY = "audit-test-key-" + "x" * 40


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_AUDIT_KEY", KEY)


@pytest.fixture
def chained(database_url: str) -> str:
    """A database with ten chained audit rows."""
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        for i in range(10):
            record_audit(conn, actor="user:insp1", action="case.confirm", object_type="case", object_id=i,
                         detail={"note": f"visit {i}", "score": 0.1 * i, "big": 1e20})
        conn.commit()
    return database_url


def cli_verify(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = anju(["audit", "verify", "--database-url", url])
    return code, capsys.readouterr().out


def superuser_edit(url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """What someone with database superuser rights could do: switch the append-only trigger off."""
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(sql, params)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_intact_chain_verifies(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli_verify(chained, capsys)
    assert code == 0 and "audit chain ok: 10 rows, head seq=10" in out


def test_update_and_delete_are_refused_by_the_database(chained: str) -> None:
    with psycopg.connect(chained) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 3")
        conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM audit_log WHERE seq = 3")
        conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("TRUNCATE audit_log")


def test_edited_row_is_named(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    superuser_edit(chained, "UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 4")
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "BROKEN at seq=4" in out and "MAC mismatch" in out


def test_edited_detail_and_time_are_named(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    superuser_edit(chained, "UPDATE audit_log SET detail = jsonb_set(detail, '{note}', '\"no visit\"')"
                            " WHERE seq = 7")
    assert "BROKEN at seq=7" in cli_verify(chained, capsys)[1]
    superuser_edit(chained, "UPDATE audit_log SET ts = ts + interval '1 microsecond' WHERE seq = 2")
    assert "BROKEN at seq=2" in cli_verify(chained, capsys)[1]


def test_deleted_row_is_named(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    superuser_edit(chained, "DELETE FROM audit_log WHERE seq = 6")
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "BROKEN at seq=6" in out and "missing" in out


def test_row_inserted_out_of_band_is_named(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(chained) as conn:  # an INSERT needs no superuser: only the MAC gives it away
        conn.execute("INSERT INTO audit_log (seq, actor, action, object_type, object_id)"
                     " VALUES (11, 'user:adm', 'case.close', 'case', '3')")
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "BROKEN at seq=11" in out and "no MAC" in out


def test_forged_mac_and_reordered_rows_are_named(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(chained) as conn:
        conn.execute("INSERT INTO audit_log (seq, actor, action, object_type, object_id, mac)"
                     " VALUES (11, 'user:adm', 'case.close', 'case', '3', repeat('a', 64))")
    assert "BROKEN at seq=11" in cli_verify(chained, capsys)[1]
    superuser_edit(chained, "DELETE FROM audit_log WHERE seq = 11")
    # Swap two rows' contents (keeping each MAC where it was): both positions stop matching.
    superuser_edit(chained, "UPDATE audit_log SET seq = -seq WHERE seq IN (8, 9)")
    superuser_edit(chained, "UPDATE audit_log SET seq = CASE seq WHEN -8 THEN 9 ELSE 8 END WHERE seq < 0")
    assert "BROKEN at seq=8" in cli_verify(chained, capsys)[1]


def test_wrong_key_fails_verification(chained: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(chained) as conn:
        assert verify(conn).ok
        assert verify(conn, key=b"another key entirely, 32 bytes long").bad_seq == 1


def test_concurrent_writers_keep_one_chain(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        conn.commit()
    errors: list[psycopg.Error] = []

    def writer(n: int) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                for i in range(40):
                    record_audit(conn, actor=f"system:w{n}", action="unit.touched", object_type="unit",
                                 object_id=f"U{i}")
                    if i % 7 == 3:
                        conn.rollback()  # rolled-back appends leave no gap
                    else:
                        conn.commit()
        except psycopg.Error as err:  # handed to the main thread, which fails the test with it
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with psycopg.connect(database_url) as conn:
        result = verify(conn)
        count = conn.execute("SELECT count(*), max(seq) FROM audit_log").fetchone()
    assert result.ok and count == (result.rows, result.rows)
    assert result.rows == 4 * (40 - 6)
    print(f"concurrent writers: {result.rows} rows chained, verified ok")


def test_key_rules(tmp_path: Any) -> None:
    with pytest.raises(AuditKeyError, match="placeholder"):
        resolve_audit_key(AuditSettings(environment="production", audit_key="changethis"))  # type: ignore[arg-type]
    with pytest.raises(AuditKeyError, match="shorter"):
        resolve_audit_key(AuditSettings(environment="production", audit_key="short"))  # type: ignore[arg-type]
    with pytest.raises(AuditKeyError, match="outside development"):
        resolve_audit_key(AuditSettings(environment="production", audit_key=None, home=tmp_path))
    dev = AuditSettings(environment="development", audit_key=None, home=tmp_path)
    first = resolve_audit_key(dev)
    assert len(first) == 64 and resolve_audit_key(dev) == first  # generated once, then reused
    key_file = tmp_path / "keys" / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_deferred_rows_leave_the_chain_free_until_the_end_of_the_block(database_url: str) -> None:
    with psycopg.connect(database_url) as long_run, psycopg.connect(database_url) as person:
        ensure_schema(long_run)
        long_run.commit()
        person.execute("SET lock_timeout = '2s'")
        with deferred_audit(long_run):
            for i in range(3):
                record_audit(long_run, actor="system:detector", action="alert.opened", object_type="alert",
                             object_id=i)
            # Mid-run, a person's action appends and commits without waiting for the long transaction.
            record_audit(person, actor="user:insp1", action="case.confirm", object_type="case", object_id=7)
            person.commit()
        long_run.commit()
        rows = long_run.execute("SELECT seq, actor, ts FROM audit_log ORDER BY seq").fetchall()
        assert [(r[0], r[1]) for r in rows] == [
            (1, "user:insp1"), (2, "system:detector"), (3, "system:detector"), (4, "system:detector")]
        assert rows[1][2] < rows[0][2]  # the held rows keep the time of their action

        # A block that raises writes nothing.
        with pytest.raises(RuntimeError), deferred_audit(long_run):
            record_audit(long_run, actor="system:detector", action="alert.opened", object_type="alert",
                         object_id=99)
            raise RuntimeError("detection failed")
        long_run.commit()
        with long_run.transaction():
            long_run.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            result = verify(long_run)
        assert result.ok and result.rows == 4
