-- codestore schema 4 in PostgreSQL's dialect: the twin of migrations/0004_channels_generations.sql
-- (the reference, with the comments), translated by the rules in 0001_initial.sql. SQLite's
-- strftime('%s', 'now') is extract(epoch FROM now()); a subquery in FROM is named.
CREATE TABLE channels (
  name       TEXT COLLATE "C" PRIMARY KEY,
  generation BIGINT NOT NULL DEFAULT 0,
  previous   BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);

CREATE TABLE generations (
  channel    TEXT COLLATE "C" NOT NULL REFERENCES channels (name),
  number     BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  action     TEXT COLLATE "C" NOT NULL,
  release    BIGINT REFERENCES releases (id),
  label      TEXT COLLATE "C",
  reason     TEXT COLLATE "C" NOT NULL DEFAULT '',
  PRIMARY KEY (channel, number)
);
CREATE UNIQUE INDEX generations_label ON generations (label) WHERE label IS NOT NULL;

CREATE TABLE generation_modules (
  channel TEXT COLLATE "C" NOT NULL REFERENCES channels (name),
  module  TEXT COLLATE "C" NOT NULL,
  version BIGINT NOT NULL,
  first   BIGINT NOT NULL,
  until   BIGINT,
  PRIMARY KEY (channel, module, first)
);
CREATE INDEX generation_modules_version ON generation_modules (module, version);
CREATE INDEX generation_modules_first ON generation_modules (channel, first);
CREATE INDEX generation_modules_until ON generation_modules (channel, until);

CREATE TABLE generation_apps (
  channel     TEXT COLLATE "C" NOT NULL REFERENCES channels (name),
  app         TEXT COLLATE "C" NOT NULL,
  app_version BIGINT NOT NULL REFERENCES app_versions (id),
  first       BIGINT NOT NULL,
  until       BIGINT,
  PRIMARY KEY (channel, app, first)
);
CREATE INDEX generation_apps_app_version ON generation_apps (app_version);
CREATE INDEX generation_apps_first ON generation_apps (channel, first);
CREATE INDEX generation_apps_until ON generation_apps (channel, until);

CREATE TABLE channel_modules (
  channel  TEXT COLLATE "C" NOT NULL REFERENCES channels (name),
  module   TEXT COLLATE "C" NOT NULL REFERENCES modules (name),
  version  BIGINT NOT NULL DEFAULT 0,
  since    BIGINT NOT NULL DEFAULT 0,
  previous BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, module)
);
CREATE INDEX channel_modules_version ON channel_modules (module, version);
CREATE INDEX channel_modules_previous ON channel_modules (module, previous);

ALTER TABLE events ADD COLUMN channel TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE events SET channel = 'default'
  WHERE action IN ('import', 'activate', 'rollback', 'release-create', 'release-rollback');

INSERT INTO channels (name, generation, previous, created_at)
  VALUES ('default', 0, 0, CAST(extract(epoch FROM now()) AS BIGINT));

INSERT INTO generations (channel, number, created_at, action, label, reason)
  SELECT 'default', ROW_NUMBER() OVER (ORDER BY created_at, name), created_at, 'snapshot', name, note
  FROM snapshots;
INSERT INTO generation_modules (channel, module, version, first, until)
  SELECT 'default', s.module, s.version, g.number, g.number + 1
  FROM snapshot_modules s JOIN generations g ON g.channel = 'default' AND g.label = s.release;

INSERT INTO generations (channel, number, created_at, action, reason)
  SELECT 'default', n, CAST(extract(epoch FROM now()) AS BIGINT), 'migrate', 'schema 2''s active set'
  FROM (SELECT coalesce(max(number), 0) + 1 AS n FROM generations WHERE channel = 'default') AS next
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

ALTER TABLE modules DROP COLUMN active_version;
ALTER TABLE modules DROP COLUMN active_since;
ALTER TABLE modules DROP COLUMN previous_version;
