-- Failed sign-ins per account name and per client address (hub.auth.throttle), and an account's lockout
-- until an admin lifts it. Names that are no account are counted too, so that the answers do not tell
-- which names exist.
CREATE TABLE IF NOT EXISTS login_throttle (
    scope        text        NOT NULL CHECK (scope IN ('account', 'address')),
    key          text        NOT NULL,
    failures     integer     NOT NULL DEFAULT 0,
    last_failure timestamptz NULL,
    locked_at    timestamptz NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS login_throttle_last_failure ON login_throttle (last_failure);
