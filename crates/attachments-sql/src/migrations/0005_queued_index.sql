-- A pass reads only the queued rows that are due. Partial, so synced and archived rows (most
-- of the table) cost nothing to maintain; by state first, so a pass without downloads skips
-- backed-off downloads; then next_attempt_at, so "no retry time" (NULL) and "retry time
-- passed" (<= now) are each one range, and the earliest retry time is the first entry after
-- the NULLs. Queries must repeat the term `state IN (0, 1, 2)` to use it.
CREATE INDEX "{table}_queued_next_attempt" ON "{table}" (state, next_attempt_at)
    WHERE state IN (0, 1, 2);
