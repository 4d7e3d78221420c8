-- codestore schema 1: module versions, content-addressed blobs, dictionaries, releases,
-- events, served counts. Described in docs/schema.md. Never edit an applied migration:
-- the runner refuses a database whose recorded checksum differs; add 0002_... instead.

-- Store-wide values: 'generation' grows with every committed change.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('generation', 0);

-- Trained zstd dictionaries; new blobs use the newest (highest id).
CREATE TABLE dictionaries (
  id          INTEGER PRIMARY KEY,
  zstd_id     INTEGER NOT NULL,          -- ZDICT_getDictID: what the frames name
  created_at  INTEGER NOT NULL,
  samples     INTEGER NOT NULL,
  bytes       BLOB NOT NULL
);

-- Image bytes as given (gzip wrapper included), one row per distinct SHA-256, stored as
-- one zstd frame with the content checksum on.
CREATE TABLE blobs (
  id            INTEGER PRIMARY KEY,
  sha256        BLOB NOT NULL UNIQUE,      -- 32 bytes, of the raw bytes
  raw_size      INTEGER NOT NULL,
  stored_size   INTEGER NOT NULL,
  level         INTEGER NOT NULL,
  dictionary_id INTEGER REFERENCES dictionaries (id),
  data          BLOB NOT NULL
);

-- One row per module name ever imported. high_water is the highest version number ever
-- given (never decreases, so numbers are never reused); active_version 0 = none active;
-- previous_version is what rollback(name) returns to (0 = nothing).
CREATE TABLE modules (
  name             TEXT PRIMARY KEY,
  high_water       INTEGER NOT NULL DEFAULT 0,
  active_version   INTEGER NOT NULL DEFAULT 0,
  active_since     INTEGER NOT NULL DEFAULT 0,
  previous_version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE versions (
  module      TEXT NOT NULL REFERENCES modules (name),
  version     INTEGER NOT NULL,
  blob_id     INTEGER NOT NULL REFERENCES blobs (id),
  lib         TEXT NOT NULL DEFAULT '',
  md5         TEXT NOT NULL,               -- beam_lib:md5/1, hex
  vsn         TEXT NOT NULL DEFAULT '',    -- beam_lib:version/1 as ~w text
  origin      TEXT NOT NULL DEFAULT '',
  note        TEXT NOT NULL DEFAULT '',
  warning     TEXT NOT NULL DEFAULT '',
  imported_at INTEGER NOT NULL,
  PRIMARY KEY (module, version)
);
CREATE INDEX versions_blob ON versions (blob_id);
CREATE INDEX versions_lib ON versions (lib);

CREATE TABLE releases (
  name       TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  note       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE release_modules (
  release TEXT NOT NULL REFERENCES releases (name) ON DELETE CASCADE,
  module  TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (release, module),
  FOREIGN KEY (module, version) REFERENCES versions (module, version)
);
CREATE INDEX release_modules_version ON release_modules (module, version);

-- The history: every change of the store, and the loader's events.
CREATE TABLE events (
  id           INTEGER PRIMARY KEY,
  time         INTEGER NOT NULL,
  action       TEXT NOT NULL,
  module       TEXT NOT NULL DEFAULT '',
  from_version INTEGER NOT NULL DEFAULT 0,
  to_version   INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_module ON events (module, id);

-- How often the boot server served each version.
CREATE TABLE served (
  module      TEXT NOT NULL,
  version     INTEGER NOT NULL,
  count       INTEGER NOT NULL DEFAULT 0,
  last_served INTEGER NOT NULL DEFAULT 0,
  last_peer   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (module, version)
) WITHOUT ROWID;
