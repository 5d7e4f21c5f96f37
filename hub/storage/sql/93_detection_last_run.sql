-- The last detection run (hub/detection/asof.py:detect_as_of), for the operators' status page and
-- `anju status`: one row, replaced by every run, so that a run that flags nothing is seen as well as one
-- that flags many. The hub's pipeline runs detection often; a row per run would be a log nobody reads.
CREATE TABLE IF NOT EXISTS detection_last_run (
    only_row     boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    as_of        date        NOT NULL,
    units        integer     NOT NULL,
    flagged      integer     NOT NULL,
    opened       integer     NOT NULL,
    jobs         integer     NOT NULL
);
