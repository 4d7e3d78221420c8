-- codestore schema 4: channels and generations (docs/model.md: a channel is a named active set
-- that a group of nodes follows; every change to it makes an immutable generation).
--
-- Schema 3's one flat active set (modules.active_version) becomes the channel 'default', so
-- every existing command keeps its meaning; its snapshots become labelled generations of
-- 'default' (the label is the snapshot's name).

-- --- Channels and generations --------------------------------------------------------------------
-- A channel is a named active set that a group of nodes follows. generation: its current
-- generation's number (0: none yet); previous: the one `channel rollback` returns to (0: none).
-- A channel other than 'default' is made by its first change.
CREATE TABLE channels (
  name       TEXT PRIMARY KEY,
  generation INTEGER NOT NULL DEFAULT 0,
  previous   INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A generation is immutable once written (only a snapshot's label goes when the snapshot is
-- deleted). action: what made it (import, activate, rollback, deploy, channel-rollback,
-- snapshot, snapshot-rollback, migrate); release: the Erlang release a deploy made the
-- content; label: a snapshot's name (`release create NAME`), unique in the store, as schema
-- 2's release names were.
CREATE TABLE generations (
  channel    TEXT NOT NULL REFERENCES channels (name),
  number     INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  action     TEXT NOT NULL,
  release    INTEGER REFERENCES releases (id),
  label      TEXT,
  reason     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (channel, number)
);
CREATE UNIQUE INDEX generations_label ON generations (label) WHERE label IS NOT NULL;

-- One version of each module, and one revision of each application, per generation, kept as
-- intervals so that a change writes only what changed (an import of one module into a channel
-- of 3,000 writes two rows, not 3,000): a row pins `version` in generations
-- [first, until) of its channel (until NULL: up to the current one and on). Generation K of
-- channel C is every row of C with first <= K AND (until IS NULL OR until > K); what changed
-- from K-1 to K is the rows with first = K or until = K.
--
-- No foreign key to versions: gc keeps what a channel's current and previous generations,
-- its modules' rollback targets and every labelled generation pin, not every version history
-- ever named, so an old unlabelled generation may name a version gc deleted (docs/store.md).
CREATE TABLE generation_modules (
  channel TEXT NOT NULL REFERENCES channels (name),
  module  TEXT NOT NULL,
  version INTEGER NOT NULL,
  first   INTEGER NOT NULL,
  until   INTEGER,
  PRIMARY KEY (channel, module, first)
) WITHOUT ROWID;
CREATE INDEX generation_modules_version ON generation_modules (module, version);
CREATE INDEX generation_modules_first ON generation_modules (channel, first);
CREATE INDEX generation_modules_until ON generation_modules (channel, until);

CREATE TABLE generation_apps (
  channel     TEXT NOT NULL REFERENCES channels (name),
  app         TEXT NOT NULL,               -- app_versions.app: one revision of each application
  app_version INTEGER NOT NULL REFERENCES app_versions (id),
  first       INTEGER NOT NULL,
  until       INTEGER,
  PRIMARY KEY (channel, app, first)
) WITHOUT ROWID;
CREATE INDEX generation_apps_app_version ON generation_apps (app_version);
CREATE INDEX generation_apps_first ON generation_apps (channel, first);
CREATE INDEX generation_apps_until ON generation_apps (channel, until);

-- A channel's active set now: what its current generation pins, plus per module what
-- `rollback(module)` returns to (previous; 0: nothing) and since when the version is active.
-- Kept in step with the open rows (until NULL) of generation_modules in the same transaction:
-- it is what every read of "the active version" looks up, by primary key.
CREATE TABLE channel_modules (
  channel  TEXT NOT NULL REFERENCES channels (name),
  module   TEXT NOT NULL REFERENCES modules (name),
  version  INTEGER NOT NULL DEFAULT 0,     -- 0: none active (a rollback target may remain)
  since    INTEGER NOT NULL DEFAULT 0,
  previous INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, module)
) WITHOUT ROWID;
CREATE INDEX channel_modules_version ON channel_modules (module, version);
CREATE INDEX channel_modules_previous ON channel_modules (module, previous);

-- The channel a change of the store was made in ('' for store-wide events and the loader's).
ALTER TABLE events ADD COLUMN channel TEXT NOT NULL DEFAULT '';
UPDATE events SET channel = 'default'
  WHERE action IN ('import', 'activate', 'rollback', 'release-create', 'release-rollback');

-- --- Moving schema 2's state in --------------------------------------------------------------------
-- Snapshots first, as generations 1..N of 'default' in the order they were made (each pins its
-- set for its own generation only), then the active set as generation N+1, the current one
-- (a fresh database has neither: 'default' starts at generation 0, empty).
INSERT INTO channels (name, generation, previous, created_at)
  VALUES ('default', 0, 0, CAST(strftime('%s', 'now') AS INTEGER));

INSERT INTO generations (channel, number, created_at, action, label, reason)
  SELECT 'default', ROW_NUMBER() OVER (ORDER BY created_at, name), created_at, 'snapshot', name, note
  FROM snapshots;
INSERT INTO generation_modules (channel, module, version, first, until)
  SELECT 'default', s.module, s.version, g.number, g.number + 1
  FROM snapshot_modules s JOIN generations g ON g.channel = 'default' AND g.label = s.release;

INSERT INTO generations (channel, number, created_at, action, reason)
  SELECT 'default', n, CAST(strftime('%s', 'now') AS INTEGER), 'migrate', 'schema 2''s active set'
  FROM (SELECT coalesce(max(number), 0) + 1 AS n FROM generations WHERE channel = 'default')
  WHERE EXISTS (SELECT 1 FROM snapshots) OR EXISTS (SELECT 1 FROM modules WHERE active_version > 0);
UPDATE channels SET generation = (SELECT coalesce(max(number), 0) FROM generations WHERE channel = 'default')
  WHERE name = 'default';
INSERT INTO generation_modules (channel, module, version, first, until)
  SELECT 'default', name, active_version, (SELECT generation FROM channels WHERE name = 'default'), NULL
  FROM modules WHERE active_version > 0;

INSERT INTO channel_modules (channel, module, version, since, previous)
  SELECT 'default', name, active_version, active_since, previous_version
  FROM modules WHERE active_version > 0 OR previous_version > 0;

DROP TABLE snapshot_modules;
DROP TABLE snapshots;

-- The active set lives in channel_modules now.
ALTER TABLE modules DROP COLUMN active_version;
ALTER TABLE modules DROP COLUMN active_since;
ALTER TABLE modules DROP COLUMN previous_version;
