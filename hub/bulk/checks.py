"""The SQL that stages, checks, casts and stores import lines: the one authority on reject reasons.

Units and access events go through it whole; readings only for the lines the client's fast path
(``anju.hub.bulk.parse``) did not recognise. Texts that depend on the server's version are built by
``stage_sql`` and ``check_sql``; the hub supports PostgreSQL 15 to 18.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from anju.hub.bulk.parse import Kind, accepted_headers
from anju_wire.payloads import (
    BUILDING_MAX_LENGTH,
    FLOOR_MAX,
    FLOOR_MIN,
    IDENT_MAX_LENGTH,
    IDENT_PATTERN,
    PSEUDONYM_PATTERN,
    STRANGER_METHODS,
    AccessMethod,
    MeterKind,
)

# Each line is staged as one text value: CSV mode with delimiter and quote bytes that never occur in
# the files, so COPY neither splits nor unescapes anything and a malformed line cannot abort the COPY.
STAGE = """
CREATE TEMP TABLE IF NOT EXISTS bulk_stage (n bigserial, raw text) ON COMMIT PRESERVE ROWS;
TRUNCATE bulk_stage RESTART IDENTITY;
"""
COPY_STAGE = "COPY bulk_stage (raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"

# A timestamp must carry its UTC offset (a bare local time is ambiguous); string tests, not a regex,
# because this runs for every line.
_TS_OK = (
    "(length(f[1]) >= 19 AND substr(f[1], 11, 1) IN ('T', ' ') AND (right(f[1], 1) = 'Z' "
    "OR substr(f[1], length(f[1]) - 5, 1) IN ('+', '-') OR substr(f[1], length(f[1]) - 2, 1) IN ('+', '-')) "
    "AND pg_input_is_valid(f[1], 'timestamptz'))"
)

# A line's fields, as CSV (RFC 4180) on one line: a field may be quoted whole ("A001", "1, East"), a quote
# inside a quoted field doubled (""). Lines without a quote, nearly all, are simply split. A line whose
# quotes do not follow that form gets no fields (NULL), and so a reason.
_FIELD = '"(?:[^"]|"")*"|[^,"]*'
_FIELDS = f"""CASE WHEN strpos(raw, '"') = 0 THEN string_to_array(raw, ',')
        WHEN raw ~ '^(?:{_FIELD})(?:,(?:{_FIELD}))*$' THEN ARRAY(
            SELECT CASE WHEN left(q.m[1], 1) = '"'
                        THEN replace(substr(q.m[1], 2, length(q.m[1]) - 2), '""', '"') ELSE q.m[1] END
            FROM regexp_matches(',' || raw, ',({_FIELD})', 'g') WITH ORDINALITY AS q(m, k) ORDER BY q.k)
    END"""
_MALFORMED = "WHEN f IS NULL THEN 'malformed quotes (quote a field whole; a quote inside it as \"\")'"

# Split lines into fields, with a reason for each bad line. MATERIALIZED: the reason is computed once
# per line, not once per use. Each kind's check adds its own reasons to this start. @FIELDS@ is the
# file's header's count (``check_sql``): a kind with optional columns has more than one. A field past
# a line's last (f[8] of a 7-field units line) is NULL, so a check of an optional field never fires.
_CHECK_HEAD = f"""
CREATE TEMP TABLE bulk_checked ON COMMIT DROP AS
WITH s AS (
    SELECT n, raw, {_FIELDS} AS f
    FROM (SELECT n, rtrim(raw, E'\\r') AS raw FROM bulk_stage) r
), c AS MATERIALIZED (
    SELECT n, raw, f, CASE
        WHEN raw IS NULL OR raw = '' THEN 'empty line'
        {_MALFORMED}
        WHEN cardinality(f) <> @FIELDS@ THEN 'expected @FIELDS@ fields, found ' || cardinality(f)"""


# The wire contract's rules (anju_wire.payloads) as SQL, built from the contract's own constants.
# tests/hub/test_import_parity.py holds the two to the same verdicts.
def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def _words(values: list[str]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]


def _not_ident(field: str) -> str:
    return f"(length({field}) > {IDENT_MAX_LENGTH} OR {field} !~ '{IDENT_PATTERN}')"


_METERS = [m.value for m in MeterKind]
_METHODS = [m.value for m in AccessMethod]
_STRANGER_METHODS = sorted(m.value for m in STRANGER_METHODS)
_STRANGER_RULE = f"(only a {_words(_STRANGER_METHODS)} can be unknown)"
_IDENT_RULE = f"letters, digits and _.:- up to {IDENT_MAX_LENGTH}, starting with a letter or digit"


CHECK: dict[Kind, str] = {
    "readings": _CHECK_HEAD + f"""
        WHEN NOT {_TS_OK} THEN 'ts is not an ISO 8601 timestamp with a UTC offset'
        @TS_BOUNDS@
        WHEN f[2] = '' THEN 'unit_id is empty'
        WHEN f[3] NOT IN ({_sql_list(_METERS)}) THEN 'meter must be {_words(_METERS)}'
        WHEN NOT pg_input_is_valid(f[4], 'double precision') THEN 'value is not a number'
        WHEN f[4]::float8 IN ('NaN', 'Infinity', '-Infinity') OR f[4]::float8 < 0
            THEN 'value must be a finite cumulative register >= 0'
        WHEN NOT EXISTS (SELECT 1 FROM units u WHERE u.unit_id = f[2]) THEN 'unknown unit_id (not in units)'
    END AS reason
    FROM s
)
SELECT n, raw, reason,
       CASE WHEN reason IS NULL THEN f[1]::timestamptz END AS ts,
       CASE WHEN reason IS NULL THEN f[2] END AS unit_id,
       CASE WHEN reason IS NULL THEN f[3] END AS meter,
       CASE WHEN reason IS NULL THEN f[4]::float8 END AS value
FROM c
""",
    "access": _CHECK_HEAD + f"""
        WHEN NOT {_TS_OK} THEN 'ts is not an ISO 8601 timestamp with a UTC offset'
        @TS_BOUNDS@
        WHEN f[2] = '' THEN 'device_id is empty'
        WHEN f[3] = '' THEN 'estate_id is empty'
        WHEN f[5] <> '' AND NOT pg_input_is_valid(f[5], 'integer') THEN 'floor is not an integer'
        WHEN f[6] NOT IN ({_sql_list(_METHODS)}) THEN 'method must be {_words(_METHODS)}'
        WHEN f[7] <> '' AND f[9] <> '' THEN 'both person_id and stranger_track are set'
        WHEN f[7] = '' AND f[9] = '' THEN 'neither person_id nor stranger_track is set'
        WHEN f[7] <> '' AND f[8] = '' THEN 'person_id without unit_id'
        WHEN f[9] <> '' AND f[8] <> '' THEN 'stranger_track with a unit_id'
        WHEN f[9] <> '' AND f[6] NOT IN ({_sql_list(_STRANGER_METHODS)})
            THEN 'stranger_track with method ' || f[6] || ' {_STRANGER_RULE}'
        WHEN f[7] <> '' AND f[7] !~ '{PSEUDONYM_PATTERN}'
            THEN 'person_id is not a pseudonym (p- and 16 to 64 lowercase hex digits)'
        WHEN {_not_ident("f[2]")} THEN 'device_id is not an id ({_IDENT_RULE})'
        WHEN {_not_ident("f[3]")} THEN 'estate_id is not an id ({_IDENT_RULE})'
        WHEN f[8] <> '' AND {_not_ident("f[8]")} THEN 'unit_id is not an id ({_IDENT_RULE})'
        WHEN f[9] <> '' AND {_not_ident("f[9]")} THEN 'stranger_track is not an id ({_IDENT_RULE})'
        WHEN length(f[4]) > {BUILDING_MAX_LENGTH}
            THEN 'building is longer than {BUILDING_MAX_LENGTH} characters'
        WHEN f[5] <> '' AND f[5]::int NOT BETWEEN {FLOOR_MIN} AND {FLOOR_MAX}
            THEN 'floor must be {FLOOR_MIN} to {FLOOR_MAX}'
        WHEN f[8] <> '' AND NOT EXISTS (SELECT 1 FROM units u WHERE u.unit_id = f[8])
            THEN 'unknown unit_id (not in units)'
    END AS reason
    FROM s
)
SELECT n, raw, reason,
       CASE WHEN reason IS NULL THEN f[1]::timestamptz END AS ts,
       f[2] AS device_id, f[3] AS estate_id, nullif(f[4], '') AS building,
       CASE WHEN reason IS NULL THEN nullif(f[5], '')::int END AS floor,
       f[6] AS method, nullif(f[7], '') AS person, nullif(f[8], '') AS unit_id,
       nullif(f[9], '') AS stranger_track
FROM c
""",
    "units": _CHECK_HEAD + """
        WHEN f[1] = '' THEN 'unit_id is empty'
        WHEN f[2] = '' THEN 'estate_id is empty'
        WHEN f[4] <> '' AND NOT pg_input_is_valid(f[4], 'integer') THEN 'floor is not an integer'
        WHEN f[5] <> '' AND NOT pg_input_is_valid(f[5], 'real') THEN 'area_m2 is not a number'
        WHEN f[5] <> '' AND (f[5]::real <= 0 OR f[5]::real IN ('NaN', 'Infinity')) THEN 'area_m2 must be > 0'
        WHEN f[6] <> '' AND NOT pg_input_is_valid(f[6], 'integer') THEN 'household_size is not an integer'
        WHEN f[6] <> '' AND f[6]::int < 0 THEN 'household_size must be >= 0'
        WHEN f[7] <> '' AND (f[7] !~ '^\\d{4}-\\d\\d-\\d\\d$' OR NOT pg_input_is_valid(f[7], 'date'))
            THEN 'lease_start is not a YYYY-MM-DD date'
        WHEN f[8] <> '' AND NOT pg_input_is_valid(f[8], 'integer') THEN 'faces_enrolled is not an integer'
        WHEN f[8] <> '' AND f[8]::int < 0 THEN 'faces_enrolled must be >= 0'
        WHEN count(*) OVER (PARTITION BY f[1]) > 1 AND n <> min(n) OVER (PARTITION BY f[1])
            THEN 'unit_id repeated in the file (first occurrence kept)'
    END AS reason
    FROM s
)
SELECT n, raw, reason, f[1] AS unit_id, f[2] AS estate_id, nullif(f[3], '') AS building,
       CASE WHEN reason IS NULL THEN nullif(f[4], '')::int END AS floor,
       CASE WHEN reason IS NULL THEN nullif(f[5], '')::real END AS area_m2,
       CASE WHEN reason IS NULL THEN nullif(f[6], '')::int END AS household_size,
       CASE WHEN reason IS NULL THEN nullif(f[7], '')::date END AS lease_start,
       CASE WHEN reason IS NULL THEN nullif(f[8], '')::int END AS faces_enrolled
FROM c
""",
}

INSERT: dict[Kind, str] = {
    "readings": """
INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id)
SELECT ts, unit_id, meter, value, 'ok', NULL, 'bulk-import'
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
""",
    # A deterministic event id from the event's own fields: the same line imported again is the same event.
    "access": """
INSERT INTO access_events (ts, estate_id, device_id, event_id, building, floor, method, person, unit_id,
                           stranger_track, agent_id)
SELECT ts, estate_id, device_id,
       'import:' || md5(concat_ws('|', extract(epoch FROM ts)::text, device_id, person, stranger_track,
                                  unit_id, method)),
       building, floor, method, person, unit_id, stranger_track, 'bulk-import'
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
""",
    # Units are the registry: a changed row (e.g. a new lease) is updated; an unchanged one is left alone.
    # faces_enrolled comes from the gates, not the lease: a file without it (7 columns, or the field
    # empty) keeps the count already known rather than erasing it.
    "units": """
INSERT INTO units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start, faces_enrolled)
SELECT unit_id, estate_id, building, floor, area_m2, household_size, lease_start, faces_enrolled
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT (unit_id) DO UPDATE SET
    estate_id = EXCLUDED.estate_id, building = EXCLUDED.building, floor = EXCLUDED.floor,
    area_m2 = EXCLUDED.area_m2, household_size = EXCLUDED.household_size, lease_start = EXCLUDED.lease_start,
    faces_enrolled = COALESCE(EXCLUDED.faces_enrolled, units.faces_enrolled)
WHERE (units.estate_id, units.building, units.floor, units.area_m2, units.household_size, units.lease_start,
       units.faces_enrolled)
      IS DISTINCT FROM
      (EXCLUDED.estate_id, EXCLUDED.building, EXCLUDED.floor, EXCLUDED.area_m2, EXCLUDED.household_size,
       EXCLUDED.lease_start, COALESCE(EXCLUDED.faces_enrolled, units.faces_enrolled))
""",
}

MONTHS = "SELECT DISTINCT date_trunc('month', ts, 'UTC')::date FROM bulk_checked WHERE reason IS NULL"
# The days an import touched, in the estates' zone %(tz)s: the daily features' days (hub/storage/rollups.py).
# An access event counts on its own day. A reading counts on the day of its interval's middle and starts
# the next reading's interval, both at most half of the rollup's largest gap (3 hours) away: one near
# midnight touches both days.
STALE = """
INSERT INTO bulk_stale_days (day)
SELECT DISTINCT (ts AT TIME ZONE %(tz)s)::date FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
"""
STALE_READINGS = """
INSERT INTO bulk_stale_days (day)
SELECT DISTINCT ((ts + half) AT TIME ZONE %(tz)s)::date
FROM bulk_checked, (VALUES (interval '-90 minutes'), (interval '90 minutes')) AS h(half)
WHERE reason IS NULL
ON CONFLICT DO NOTHING
"""
REJECTS = "COPY (SELECT n, reason, raw FROM bulk_checked WHERE reason IS NOT NULL ORDER BY n) TO STDOUT"

# The lines the client did not recognise are staged with their line numbers and checked in SQL.
COPY_STAGE_NUMBERED = (
    "COPY bulk_stage (n, raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
)
ROWS = """
CREATE TEMP TABLE IF NOT EXISTS bulk_rows (ts timestamptz, unit_id text, meter text, value float8)
    ON COMMIT DELETE ROWS
"""
CHECKED_TO_ROWS = """
INSERT INTO bulk_rows (ts, unit_id, meter, value)
SELECT ts, unit_id, meter, value FROM bulk_checked WHERE reason IS NULL
"""
STALE_HOURS = """
INSERT INTO bulk_stale_days (day)
SELECT DISTINCT ((to_timestamp(h * 3600) + half) AT TIME ZONE %(tz)s)::date
FROM unnest(%(hours)s::bigint[]) h, (VALUES (interval '-90 minutes'), (interval '150 minutes')) AS x(half)
ON CONFLICT DO NOTHING
"""

# pg_input_is_valid exists only from PostgreSQL 16. Before that the same test is the cast itself, tried
# in plpgsql whose exception block catches the cast's error: the same verdicts, but a subtransaction per
# call, so only where the built-in is missing. Created per block in the session's own temporary schema.
_INPUT_IS_VALID_BEFORE_16 = """
CREATE OR REPLACE FUNCTION pg_temp.anju_input_is_valid(input text, type_name text) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    CASE type_name
        WHEN 'timestamptz' THEN PERFORM input::timestamptz;
        WHEN 'double precision' THEN PERFORM input::float8;
        WHEN 'real' THEN PERFORM input::real;
        WHEN 'integer' THEN PERFORM input::int;
        WHEN 'date' THEN PERFORM input::date;
    END CASE;
    RETURN true;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END $$;
"""
_FIRST_WITH_INPUT_IS_VALID = 160000  # PostgreSQL 16, as conn.info.server_version counts


def stage_sql(server_version: int) -> str:
    """Make (or empty) the staging table, and on servers before 16 the check's input-test function."""
    if server_version >= _FIRST_WITH_INPUT_IS_VALID:
        return STAGE
    return STAGE + _INPUT_IS_VALID_BEFORE_16


TS_FUTURE = "ts is in the future (more than the allowed clock skew ahead of now)"
TS_TOO_OLD = "ts is older than the retention horizon"


def check_sql(
    kind: Kind, server_version: int, *, window: tuple[datetime, datetime] | None = None,
    fields: int | None = None,
) -> str:
    """The check of ``kind``'s staged lines into ``bulk_checked``, for a server of ``server_version``.

    ``window``: the earliest and latest accepted timestamps (``anju_wire.TimeBounds.window``); a line
    outside it is refused with TS_FUTURE or TS_TOO_OLD. None: no bounds. ``fields``: how many fields
    the file's header has (``parse.read_header``), each line must have as many; None: the first form's.
    """
    counts = [len(h) for h in accepted_headers(kind)]
    if fields is None:
        fields = counts[0]
    elif fields not in counts:
        raise ValueError(f"a {kind} file has {' or '.join(map(str, counts))} fields, not {fields}")
    bounds = ""
    if window is not None:
        earliest, latest = (w.isoformat() for w in window)  # our own datetimes, not file input
        bounds = (f"WHEN f[1]::timestamptz > '{latest}'::timestamptz THEN '{TS_FUTURE}'\n"
                  f"        WHEN f[1]::timestamptz < '{earliest}'::timestamptz THEN '{TS_TOO_OLD}'")
    text = CHECK[kind].replace("@TS_BOUNDS@", bounds).replace("@FIELDS@", str(fields))
    if server_version >= _FIRST_WITH_INPUT_IS_VALID:
        return text
    return text.replace("pg_input_is_valid(", "pg_temp.anju_input_is_valid(")
