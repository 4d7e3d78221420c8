-- codestore schema 7: followers (docs/fleet.md). A host keeps a local SQLite replica of the
-- channels a store on PostgreSQL serves (`codestore follow`, include/codestore/follow.h).
--
-- Every store gets an identity, so that a replica can tell the store it follows from another
-- one at the same address (a database restored elsewhere, a URI that now names another store):
-- a random positive 63-bit integer, made once, never changed.
INSERT INTO meta (key, value) VALUES ('store_id', abs(random() % 9000000000000000000) + 1);

-- A replica: the one row naming its primary. A store with a row here refuses the changes that
-- would make it differ from the primary (import, activate, deploy, gc...: they go to the
-- primary); what is the host's own (the nodes it served, served counts) it still records.
-- primary_uri: the URI as given to `follow`, its password removed (libpq's PGPASSWORD or
-- ~/.pgpass supplies one); primary_store: the primary's meta 'store_id'; channels: the channels
-- followed, space-separated ('' all); created_at: Unix seconds.
CREATE TABLE follower (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  primary_uri   TEXT NOT NULL,
  primary_store INTEGER NOT NULL,
  channels      TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL
);

-- Per channel followed: the last generation applied (each generation is applied in one
-- transaction with its row here, so a replica never holds half a generation, and applying is
-- idempotent by number) and when (Unix seconds).
CREATE TABLE follower_channels (
  channel    TEXT PRIMARY KEY,
  generation INTEGER NOT NULL DEFAULT 0,
  applied_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
