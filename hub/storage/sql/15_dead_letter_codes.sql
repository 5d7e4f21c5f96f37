-- Dead letters carry a stable reason code and the estate of the topic they came on (NULL when the topic
-- named none), so that operators count refusals per estate and reason without parsing the English.
-- Idempotent; rows written before these columns existed keep NULLs.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS code text NULL;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS estate_id text NULL;
CREATE INDEX IF NOT EXISTS dead_letters_estate ON dead_letters (estate_id, received_at);
