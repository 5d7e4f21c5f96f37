"""The audit chain: appends verify, every kind of tampering is named at its sequence number, writers race."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from anju.cli import main as anju
from anju.hub.audit import deferred_audit, record_audit
from anju.hub.audit.errors import AuditKeyError
from anju.hub.audit.guard import runtime_role_owns_audit_log
from anju.hub.audit.keys import AuditSettings, resolve_audit_key
from anju.hub.audit.store import verify
from anju.hub.storage import ensure_schema

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


# --- issue 13: a tail deleted or a table truncated by whoever owns it, and a runtime role that cannot ---


@pytest.fixture(autouse=True)
def checkpoint_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint file of this test's own (ANJU_HOME is shared by the session)."""
    path = tmp_path / "audit" / "checkpoints.log"
    monkeypatch.setenv("ANJU_AUDIT_CHECKPOINT_FILE", str(path))
    return path


HEAD = "SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1"


def owner_edit(url: str, *statements: str) -> None:
    """What the table's owner (or a superuser) can do: switch the append-only triggers off and edit."""
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        for stmt in statements:
            conn.execute(stmt)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_tail_deleted_after_a_checkpoint_is_reported(chained: str, checkpoint_file: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert anju(["audit", "checkpoint", "--database-url", chained]) == 0
    assert "checkpoint written: seq=10" in capsys.readouterr().out
    owner_edit(chained, "DELETE FROM audit_log WHERE seq >= 8")
    code, out = cli_verify(chained, capsys)
    assert code == 1
    assert "BROKEN at seq=8: rows 8..10 missing at the tail" in out
    # A checkpoint is never taken over a damaged chain: the file keeps seq 10.
    assert anju(["audit", "checkpoint", "--database-url", chained]) == 1
    assert "none written" in capsys.readouterr().out
    assert len(checkpoint_file.read_text().splitlines()) == 1


def test_truncation_after_a_checkpoint_is_reported(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert anju(["audit", "checkpoint", "--database-url", chained]) == 0
    owner_edit(chained, "TRUNCATE audit_log")
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "audit_log is empty but the checkpoint" in out and "saw seq 10: truncated" in out
    # Truncated and written afresh from seq 1: the new chain is whole in itself, and still too short.
    with psycopg.connect(chained) as conn:
        for i in range(3):
            record_audit(conn, actor="user:x", action="case.confirm", object_type="case", object_id=i)
        conn.commit()
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "rows 4..10 missing at the tail" in out


def test_rewritten_row_at_the_checkpoint_is_reported(chained: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert anju(["audit", "checkpoint", "--database-url", chained]) == 0
    # Delete the tail and append new rows with the key (a hub told to) up to the same seq: MACs differ.
    owner_edit(chained, "DELETE FROM audit_log WHERE seq >= 9")
    with psycopg.connect(chained) as conn:
        for i in range(2):
            record_audit(conn, actor="user:x", action="case.confirm", object_type="case", object_id=f"n{i}")
        conn.commit()
    code, out = cli_verify(chained, capsys)
    assert code == 1 and "BROKEN at seq=10: row differs from the checkpoint" in out


def test_checkpoint_from_the_tenancy_system(chained: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(chained) as conn:
        seq, mac = conn.execute(HEAD).fetchone() or (0, "")
    owner_edit(chained, "DELETE FROM audit_log WHERE seq = 10")
    code, out = cli_verify(chained, capsys)
    assert code == 0 and "no checkpoint" in out  # without a witness the cut is invisible
    code = anju(["audit", "verify", "--database-url", chained, "--checkpoint", f"{seq}:{mac}"])
    assert code == 1 and "rows 10..10 missing at the tail" in capsys.readouterr().out


def test_forged_checkpoint_line_is_refused(chained: str, checkpoint_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert anju(["audit", "checkpoint", "--database-url", chained]) == 0
    line = checkpoint_file.read_text().replace('"seq":10', '"seq":7')
    checkpoint_file.write_text(line)
    assert anju(["audit", "verify", "--database-url", chained]) == 2
    assert "bad signature" in capsys.readouterr().err


def test_filing_carries_the_audit_head(database_url: str) -> None:
    from anju.hub.tenancy.filing import queue_filing
    from tests.hub.test_api import create_schema, seed

    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        case_id = conn.execute("SELECT id FROM cases ORDER BY id LIMIT 1").fetchone()
        assert case_id is not None
        conn.execute("DELETE FROM tenancy_outbox WHERE case_id = %s", (case_id[0],))
        record_audit(conn, actor="user:x", action="case.confirm", object_type="case", object_id=case_id[0])
        seq, mac = conn.execute(HEAD).fetchone() or (0, "")
        assert queue_filing(conn, case_id=case_id[0], actor="user:x")
        payload = conn.execute("SELECT payload FROM tenancy_outbox WHERE case_id = %s",
                               (case_id[0],)).fetchone()
    assert payload is not None and payload[0]["audit_checkpoint"] == {"seq": seq, "mac": mac}
    from anju.device_sims.tenancy import CaseFiling

    assert CaseFiling.model_validate(payload[0]).audit_checkpoint is not None


def _runtime_role(database_url: str) -> tuple[str, str]:
    """A login role like the deploy's ``anju``: owns the database (and so every table it creates)."""
    name, password = "t_rt_" + secrets.token_hex(4), secrets.token_urlsafe(16)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                        sql.Literal(password)))
        dbname = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname),
                                                                      sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(name)))
    return name, psycopg.conninfo.make_conninfo(database_url, user=name, password=password)


def test_runtime_role_may_only_read_and_append(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    role, runtime_url = _runtime_role(database_url)
    assert anju(["audit", "protect", "--runtime-role", role, "--database-url", database_url]) == 0
    with psycopg.connect(runtime_url) as conn:
        assert not runtime_role_owns_audit_log(conn)
        ensure_schema(conn)  # the hub's start still migrates everything else
        for i in range(3):
            record_audit(conn, actor="user:insp1", action="case.confirm", object_type="case", object_id=i)
        conn.commit()
        refused = [
            "DELETE FROM audit_log WHERE seq = 3",
            "UPDATE audit_log SET actor = 'x'",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "INSERT INTO audit_log (seq, actor, action, object_type, object_id)"
            " VALUES (4, 'x', 'x', 'x', 'x')",
            "CREATE OR REPLACE FUNCTION anju_audit_insert(bigint, timestamptz, text, text, text, text, jsonb,"
            " text) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint'",
            "ALTER FUNCTION anju_audit_append_only() OWNER TO CURRENT_USER",
        ]
        for stmt in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
            conn.rollback()
        # The function appends only the next row, and only with a MAC.
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="does not follow"):
            conn.execute("SELECT anju_audit_insert(9, now(), 'x', 'x', 'x', 'x', '{}', %s)", ("a" * 64,))
        conn.rollback()
        result = verify(conn)
    assert result.ok and result.rows == 3


def test_production_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ANJU_AUDIT_KEY", raising=False)
    monkeypatch.delenv("ANJU_AUDIT_KEY_FILE", raising=False)
    monkeypatch.setenv("ANJU_ENVIRONMENT", "production")
    assert anju(["hub"]) == 2
    assert "set ANJU_AUDIT_KEY or ANJU_AUDIT_KEY_FILE" in capsys.readouterr().err
