-- How many of the household's registered people have a face enrolled at the estate's gates (the edge
-- agent's face gallery or the gate vendor's face library). Idempotent.
--
-- NULL: not known. 0: nobody enrolled; the household enters by card, code or QR only, which is normal
-- and counts as much as a face. The sublet rules read it: an enrolled household whose face is never
-- recognised while its card is used daily has lent its card. Set by `anju import --units` (optional 8th
-- column) and upsert_units; an absent value keeps the known one.
ALTER TABLE units ADD COLUMN IF NOT EXISTS faces_enrolled int NULL;
ALTER TABLE units DROP CONSTRAINT IF EXISTS units_faces_enrolled_check;
ALTER TABLE units ADD CONSTRAINT units_faces_enrolled_check CHECK (faces_enrolled >= 0);
COMMENT ON COLUMN units.faces_enrolled IS
    'registered people of the household with a face enrolled at the gates; NULL unknown, 0 card/code/QR only';
