-- codestore schema 5: the nodes a boot server served (docs/model.md, "Nodes"; docs/schema.md).
--
-- The boot-server protocol carries no node name, so a node is one TCP connection: a node that
-- reconnects (its loader does after 60 s idle, or after a server restart) is a new row. Rows
-- are written by `codestore serve` in batches (one transaction for every node that changed in
-- the last second or so, never one per module served) and removed by `nodes --forget`.
-- Plain SQL: PostgreSQL takes the same text but for INTEGER PRIMARY KEY's automatic id.

-- One node. address: the client's "ip:port" as the server saw it; server: the server's own
-- "ip:port" the connection came in on (several servers may share the database); client_root:
-- the client root its paths were under ('' none: paths under --root); channel: the channel its
-- requests were served from ('' a snapshot source, `serve --release`); erts_vsn: the version
-- the discovery exchange required (erlang:system_info(version) of the node: the server answers
-- no other); release_name/release_vsn: the Erlang release whose files it last read ('' none);
-- generation: the channel's generation when the node was first served; first_seen/last_seen:
-- Unix seconds of its first and last request; requests: frames answered; modules: module
-- images sent.
CREATE TABLE nodes (
  id           INTEGER PRIMARY KEY,
  address      TEXT NOT NULL,
  server       TEXT NOT NULL DEFAULT '',
  client_root  TEXT NOT NULL DEFAULT '',
  channel      TEXT NOT NULL DEFAULT '',
  erts_vsn     TEXT NOT NULL DEFAULT '',
  release_name TEXT NOT NULL DEFAULT '',
  release_vsn  TEXT NOT NULL DEFAULT '',
  generation   INTEGER NOT NULL DEFAULT 0,
  first_seen   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  requests     INTEGER NOT NULL DEFAULT 0,
  modules      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX nodes_channel ON nodes (channel);
CREATE INDEX nodes_last_seen ON nodes (last_seen);

-- The module versions a node fetched: the last one of each module (a node runs one version of
-- a module; a rollback that reached it replaces the row). app: the application (or store lib)
-- it was served as part of; md5: beam_lib:md5/1 of the code sent; fetched_at: Unix seconds.
-- No foreign key to versions: gc may delete a version a node once fetched.
CREATE TABLE node_modules (
  node       INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  module     TEXT NOT NULL,
  version    INTEGER NOT NULL,
  md5        TEXT NOT NULL DEFAULT '',
  app        TEXT NOT NULL DEFAULT '',
  fetched_at INTEGER NOT NULL,
  PRIMARY KEY (node, module)
);
