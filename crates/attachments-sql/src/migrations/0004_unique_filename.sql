-- Two rows sharing a filename share one local file and one remote object: deleting either
-- would delete the other's data. A table written by an older version may hold such rows;
-- failing here would stop the app from starting, so of each group the row written last
-- (newest timestamp, then highest version, then greatest id) stays, since the shared file
-- most likely holds its contents, and the others are removed. No file or object is touched:
-- the row that stays still references them. The store logs the removed ids before this runs.
DELETE FROM "{table}" WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, ROW_NUMBER() OVER (
            PARTITION BY filename
            ORDER BY timestamp DESC, version DESC, id DESC
        ) AS place FROM "{table}"
    ) WHERE place > 1
);
CREATE UNIQUE INDEX "{table}_filename" ON "{table}" (filename);
