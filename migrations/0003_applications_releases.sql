-- codestore schema 3: application versions with their files, and Erlang releases
-- (docs/model.md says what they mean; docs/schema.md lists the columns).
--
-- Schema 2's "releases" were snapshots of the active set: they become `snapshots` (and
-- `snapshot_modules`), unchanged, so that the name `releases` means Erlang releases
-- (name, vsn) from now on. (Schema 4 moves snapshots into labelled generations of channels.)
-- An APPLICATION VERSION (app, vsn, revision) holds its module versions in the byte form it
-- came with, and its other files; every file is a blob like an image. A module version stays
-- keyed by (module, version). versions.lib stays: for a version imported without a .app it is
-- the application the version belongs to, its application version unknown.

-- --- Which frame belongs to which blob ----------------------------------------------------------
-- frame_checksum: the 4 bytes that end the blob's zstd frame, the frame's content checksum (the
-- low 32 bits of XXH64 of the raw bytes, written because every frame has the checksum flag on).
-- It depends on the content only, so compact and repair, which re-encode the same bytes, leave
-- it true. A reader compares it with the end of the frame it reads before decompressing: a
-- whole, valid frame of other bytes in the row (which its own checksum would pass) is refused
-- without the cost of a SHA-256 of the bytes (include/codestore/store_reader.h). NULL: none
-- recorded (the SHA-256 is the only proof).
ALTER TABLE blobs ADD COLUMN frame_checksum BLOB;
UPDATE blobs SET frame_checksum = substr(data, -4) WHERE length(data) >= 4;

-- --- Files that are not module images --------------------------------------------------------
-- .app, .appup, priv/**, start.boot, sys.config, relup... are blobs too (content-addressed by
-- SHA-256, zstd like images). load_verdict stays NULL for them: no loader reads them as code.

-- --- Application versions ----------------------------------------------------------------------
-- What lib/<app>-<vsn>/ is. Named by the .app file's `application` and `vsn`, not by the
-- directory. The same (app, vsn) with other content is a new revision (2, 3, ...), never a
-- silent replacement. `content` identifies the content: SHA-256 (hex) of the sorted listing of
-- "path NUL module-md5-or-file-sha256 NUL" lines, so that another byte form of the same code
-- (stripped, gzip-wrapped) is the same content as far as code goes, while its bytes are kept.
CREATE TABLE app_versions (
  id          INTEGER PRIMARY KEY,
  app         TEXT NOT NULL,
  vsn         TEXT NOT NULL,
  revision    INTEGER NOT NULL,
  content     TEXT NOT NULL,
  origin      TEXT NOT NULL DEFAULT '',
  warning     TEXT NOT NULL DEFAULT '',   -- why this revision exists ("differs from revision 1 in ...")
  imported_at INTEGER NOT NULL,
  UNIQUE (app, vsn, revision),
  UNIQUE (app, vsn, content)
);

-- The module versions of an application version, each in the byte form it came with (an
-- export gives these bytes back). A module has one version per application version.
CREATE TABLE app_modules (
  app_version INTEGER NOT NULL REFERENCES app_versions (id),
  module      TEXT NOT NULL,
  version     INTEGER NOT NULL,
  blob_id     INTEGER NOT NULL REFERENCES blobs (id),
  path        TEXT NOT NULL,               -- in the application's directory: 'ebin/m.beam'
  PRIMARY KEY (app_version, module),
  FOREIGN KEY (module, version) REFERENCES versions (module, version)
);
CREATE INDEX app_modules_version ON app_modules (module, version);

-- Every other file of an application version: 'ebin/<app>.app', 'ebin/<app>.appup',
-- 'priv/...', 'include/...'. A directory or a symbolic link has no blob (link: its target).
-- mode: the permission bits (0755 for a script in priv/bin).
CREATE TABLE app_files (
  app_version INTEGER NOT NULL REFERENCES app_versions (id),
  path        TEXT NOT NULL,
  blob_id     INTEGER REFERENCES blobs (id),
  mode        INTEGER NOT NULL DEFAULT 420,
  link        TEXT,
  PRIMARY KEY (app_version, path)
);
CREATE INDEX app_files_blob ON app_files (blob_id);

-- --- Erlang releases -----------------------------------------------------------------------------
-- What a .rel names: (name, vsn), the erts version it needs, its applications in .rel order.
-- erts binaries are never stored.
ALTER TABLE releases RENAME TO snapshots;
ALTER TABLE release_modules RENAME TO snapshot_modules;
DROP INDEX release_modules_version;
CREATE INDEX snapshot_modules_version ON snapshot_modules (module, version);

CREATE TABLE releases (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  vsn         TEXT NOT NULL,
  erts_vsn    TEXT NOT NULL,
  kind        TEXT NOT NULL DEFAULT '',    -- what built it, as the importer recognized it: relx, mix, systools
  origin      TEXT NOT NULL DEFAULT '',
  imported_at INTEGER NOT NULL,
  UNIQUE (name, vsn)
);

-- The .rel's application entries in order. type: the .rel's start type as written ('' when the
-- entry has none: permanent); included: the included applications as term text ('' when not
-- given).
CREATE TABLE release_apps (
  release     INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  app_version INTEGER NOT NULL REFERENCES app_versions (id),
  type        TEXT NOT NULL DEFAULT '',
  included    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (release, position)
);
CREATE INDEX release_apps_app_version ON release_apps (app_version);

-- The release's own files, by path under the release root: 'releases/0.1.0/myrel.rel',
-- 'releases/0.1.0/start.boot', 'releases/0.1.0/sys.config', 'releases/start_erl.data',
-- 'bin/myrel'. A secret (mix's releases/COOKIE) is not stored unless asked.
CREATE TABLE release_files (
  release INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  path    TEXT NOT NULL,
  blob_id INTEGER REFERENCES blobs (id),
  mode    INTEGER NOT NULL DEFAULT 420,
  link    TEXT,
  PRIMARY KEY (release, path)
);
CREATE INDEX release_files_blob ON release_files (blob_id);

-- Module versions the release itself carries outside lib/ (mix's
-- releases/<vsn>/consolidated/*.beam): they take precedence over the applications' own
-- copies, as the boot path gives them.
CREATE TABLE release_modules (
  release INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  module  TEXT NOT NULL,
  version INTEGER NOT NULL,
  blob_id INTEGER NOT NULL REFERENCES blobs (id),
  path    TEXT NOT NULL,                   -- 'releases/0.1.0/consolidated/Elixir.Enumerable.beam'
  PRIMARY KEY (release, module),
  FOREIGN KEY (module, version) REFERENCES versions (module, version)
);
CREATE INDEX release_modules_version ON release_modules (module, version);

