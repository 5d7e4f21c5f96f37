-- Supervised verdict models (issue 3): trained from inspectors' verdicts, kept as plain numbers (no pickle).
-- Never edited: a new training is a new row; detection uses the newest row of each kind.
-- Idempotent: every statement may run again on an existing database.
CREATE TABLE IF NOT EXISTS verdict_models (
    id           bigserial        PRIMARY KEY,
    kind         text             NOT NULL CHECK (kind IN ('vacancy', 'sublet')),
    trained_at   timestamptz      NOT NULL DEFAULT now(),
    trained_by   text             NOT NULL,
    n_verdicts   int              NOT NULL,
    n_confirmed  int              NOT NULL,
    cv_auc       double precision NULL,
    model        jsonb            NOT NULL
);
CREATE INDEX IF NOT EXISTS verdict_models_kind ON verdict_models (kind, id DESC);
