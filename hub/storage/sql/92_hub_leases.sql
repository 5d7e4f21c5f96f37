-- Leases between hub processes (hub/lease.py): one row per kind of exclusive work, e.g. 'pipeline' (the
-- detection loop, tenancy delivery and scheduled jobs run by one hub at a time). A hub takes the row when
-- it is free or expired and renews it while it works; epoch grows by one at each new term, so work fenced
-- by (holder, epoch) cannot commit once another hub has taken over. Times are the database's clock only.
CREATE TABLE IF NOT EXISTS hub_leases (
    name        text        PRIMARY KEY,
    holder      text        NULL,
    epoch       bigint      NOT NULL DEFAULT 0,
    acquired_at timestamptz NULL,
    renewed_at  timestamptz NULL,
    expires_at  timestamptz NOT NULL DEFAULT '-infinity'
);
