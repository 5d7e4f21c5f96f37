-- The audit log's only way in (issue 13): a SECURITY DEFINER function owned, like audit_log itself once
-- ``anju audit protect`` has run, by a role the hub never logs in as. The hub's runtime role may then
-- read audit_log and call this function, nothing else: no UPDATE, DELETE or TRUNCATE, no disabling of
-- the append-only triggers, no replacing of this function. The MAC is computed by the hub (the key never
-- enters the database); the function only refuses a row that does not follow the current head.
-- Idempotent; once the function belongs to another role the runtime role leaves it alone.
DO $guard$
DECLARE
    fn regprocedure := to_regprocedure(
        'anju_audit_insert(bigint, timestamptz, text, text, text, text, jsonb, text)');
BEGIN
    IF fn IS NOT NULL AND NOT pg_has_role(
            current_user, (SELECT proowner FROM pg_proc WHERE oid = fn), 'USAGE') THEN
        RETURN;
    END IF;
    CREATE OR REPLACE FUNCTION anju_audit_insert(
        p_seq bigint, p_ts timestamptz, p_actor text, p_action text, p_object_type text,
        p_object_id text, p_detail jsonb, p_mac text
    ) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
    DECLARE
        head bigint;
    BEGIN
        SELECT max(seq) INTO head FROM audit_log;
        IF p_seq IS DISTINCT FROM coalesce(head, 0) + 1 THEN
            RAISE EXCEPTION 'audit row % does not follow the head %', p_seq, coalesce(head, 0)
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF p_mac IS NULL OR p_mac !~ '^[0-9a-f]{64}$' THEN
            RAISE EXCEPTION 'audit row % has no MAC', p_seq USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        INSERT INTO audit_log (seq, ts, actor, action, object_type, object_id, detail, mac)
        VALUES (p_seq, p_ts, p_actor, p_action, p_object_type, p_object_id, p_detail, p_mac);
        RETURN p_seq;
    END
    $fn$;
    REVOKE ALL ON FUNCTION anju_audit_insert(bigint, timestamptz, text, text, text, text, jsonb, text)
        FROM PUBLIC;
END
$guard$;
