-- The household's side (issue 19): who may sign in for a unit, one-time codes, sessions, the text
-- messages the hub sends, notices and answers (告知-申辩), the supervisor's reasons for filing early, and
-- the welfare queue. Idempotent.

-- The tenant of record and the household members on the lease; only the tenant and adult members sign in.
CREATE TABLE IF NOT EXISTS household_members (
    id        bigserial   PRIMARY KEY,
    unit_id   text        NOT NULL REFERENCES units (unit_id),
    name      text        NOT NULL,
    phone     text        NOT NULL CHECK (phone ~ '^\+?[0-9]{6,20}$'),
    relation  text        NOT NULL CHECK (relation IN ('tenant', 'member')),
    adult     boolean     NOT NULL,
    active    boolean     NOT NULL DEFAULT true,
    added_at  timestamptz NOT NULL DEFAULT now()
);
-- One live lease entry per phone: a code sent to it signs in to one unit only.
CREATE UNIQUE INDEX IF NOT EXISTS household_members_phone ON household_members (phone) WHERE active;
CREATE INDEX IF NOT EXISTS household_members_unit ON household_members (unit_id);

-- One-time sign-in codes: only a keyed MAC of the code is stored (the key never enters the database).
-- Asked-for numbers that are on no lease get a row too (member_id NULL), so the limits say nothing.
CREATE TABLE IF NOT EXISTS household_codes (
    id         bigserial   PRIMARY KEY,
    phone      text        NOT NULL,
    member_id  bigint      NULL REFERENCES household_members (id),
    code_mac   text        NOT NULL,
    address    text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    tries      int         NOT NULL DEFAULT 0,
    used_at    timestamptz NULL
);
CREATE INDEX IF NOT EXISTS household_codes_phone ON household_codes (phone, created_at);
CREATE INDEX IF NOT EXISTS household_codes_address ON household_codes (address, created_at);

CREATE TABLE IF NOT EXISTS household_sessions (
    token_sha256 text        PRIMARY KEY,
    member_id    bigint      NOT NULL REFERENCES household_members (id),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- Text messages to households, queued once per event and phone (the unique event key) and sent by the
-- drain with that key as the gateway's idempotency key: each event reaches each phone once.
CREATE TABLE IF NOT EXISTS notification_outbox (
    id              bigserial   PRIMARY KEY,
    event_key       text        NOT NULL UNIQUE,
    case_id         bigint      NULL REFERENCES cases (id),
    notice_event    text        NULL,
    member_id       bigint      NULL REFERENCES household_members (id),
    phone           text        NOT NULL,
    body            text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz NULL,
    gateway_id      text        NULL
);
CREATE INDEX IF NOT EXISTS notification_outbox_due ON notification_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS notification_outbox_case ON notification_outbox (case_id);

-- A notice of a case to its household (on opening; on confirmation when the policy says so). The answer
-- period runs from the first delivery of the notice; until then the notice holds the filing.
CREATE TABLE IF NOT EXISTS household_notices (
    case_id      bigint      NOT NULL REFERENCES cases (id),
    event        text        NOT NULL CHECK (event IN ('opened', 'confirmed')),
    created_at   timestamptz NOT NULL,
    recipients   int         NOT NULL,
    delivered_at timestamptz NULL,
    answer_by    timestamptz NULL,
    PRIMARY KEY (case_id, event)
);

-- The household's answers (申辩), with photos of documents stored under the case.
CREATE TABLE IF NOT EXISTS household_answers (
    id         bigserial   PRIMARY KEY,
    case_id    bigint      NOT NULL REFERENCES cases (id),
    member_id  bigint      NOT NULL REFERENCES household_members (id),
    reason     text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS household_answers_case ON household_answers (case_id);
CREATE TABLE IF NOT EXISTS household_answer_photos (
    id           bigserial PRIMARY KEY,
    answer_id    bigint    NOT NULL REFERENCES household_answers (id),
    case_id      bigint    NOT NULL REFERENCES cases (id),
    content_type text      NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size_bytes   int       NOT NULL,
    sha256       text      NOT NULL,
    data         bytea     NOT NULL
);
CREATE INDEX IF NOT EXISTS household_answer_photos_case ON household_answer_photos (case_id);

-- A supervisor's recorded reason to file a confirmed case before its answer period ends.
CREATE TABLE IF NOT EXISTS filing_overrides (
    case_id    bigint      PRIMARY KEY REFERENCES cases (id),
    decided_by text        NOT NULL,
    why        text        NOT NULL CHECK (length(why) >= 10),
    decided_at timestamptz NOT NULL DEFAULT now()
);

-- Welfare visits (关怀探访): asked for by a household, or an elderly person's low use found by a visit.
-- No case, alert or filing refers to this table, nor it to them: enforcement never reads it.
CREATE TABLE IF NOT EXISTS welfare_queue (
    id         bigserial   PRIMARY KEY,
    unit_id    text        NOT NULL REFERENCES units (unit_id),
    estate_id  text        NOT NULL,
    source     text        NOT NULL CHECK (source IN ('household', 'elderly_low_use')),
    source_key text        NOT NULL UNIQUE,
    note       text        NOT NULL DEFAULT '',
    state      text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'visited')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS welfare_queue_open ON welfare_queue (estate_id) WHERE state = 'open';
