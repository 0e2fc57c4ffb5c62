-- Versions were per row and restarted at 1 for a re-created id, so a late outcome of an
-- earlier life could pass the compare-and-set of a later one. Every write now takes its
-- version from this store-wide counter (`version = last_version + n` inside the write) and
-- the triggers advance the counter within the same statement, so a single change stays one
-- autocommit statement. Seeded above every version already in the table; a table of its own,
-- so clearing the rows keeps it.
CREATE TABLE "_{table}_versions" (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 0),
    last_version INTEGER NOT NULL
);
INSERT INTO "_{table}_versions" (id, last_version)
    SELECT 0, COALESCE(MAX(version), 0) FROM "{table}";
CREATE TRIGGER "{table}_version_after_insert" AFTER INSERT ON "{table}"
    WHEN NEW.version > (SELECT last_version FROM "_{table}_versions")
    BEGIN UPDATE "_{table}_versions" SET last_version = NEW.version; END;
CREATE TRIGGER "{table}_version_after_update" AFTER UPDATE OF version ON "{table}"
    WHEN NEW.version > (SELECT last_version FROM "_{table}_versions")
    BEGIN UPDATE "_{table}_versions" SET last_version = NEW.version; END;
