-- codestore schema 7 in PostgreSQL's dialect: the twin of migrations/0007_followers.sql (the
-- reference, with the comments), translated by the rules in 0001_initial.sql. A store on
-- PostgreSQL is a primary: its identity (meta 'store_id') is what its followers check; the
-- follower tables stay empty here (a replica is a SQLite file), kept so both schemas match.
INSERT INTO meta (key, value) VALUES ('store_id', floor(random() * 8999999999999999999)::bigint + 1);

CREATE TABLE follower (
  id            BIGINT PRIMARY KEY CHECK (id = 1),
  primary_uri   TEXT COLLATE "C" NOT NULL,
  primary_store BIGINT NOT NULL,
  channels      TEXT COLLATE "C" NOT NULL DEFAULT '',
  created_at    BIGINT NOT NULL
);

CREATE TABLE follower_channels (
  channel    TEXT COLLATE "C" PRIMARY KEY,
  generation BIGINT NOT NULL DEFAULT 0,
  applied_at BIGINT NOT NULL DEFAULT 0
);
