-- codestore schema 8: nodes that run the agent, and the outcomes of the plans they applied
-- (docs/agent-protocol.md, docs/model.md "Nodes", docs/schema.md).
--
-- An agent's connection says who its node is (its Erlang node name), so an agent node is one
-- row per node name, found again when it reconnects (to this server or another sharing the
-- database), unlike a boot-server connection, which is one row per connection.

-- name: the Erlang node name an agent said (node()); '' for a boot-server connection.
-- agent_vsn: the agent application's vsn ('' none).
ALTER TABLE nodes ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN agent_vsn TEXT NOT NULL DEFAULT '';
CREATE INDEX nodes_name ON nodes (name);

-- Every outcome an agent reported for a generation of its channel: outcome is applied,
-- reverted, refused or failed; from/to the generations of the plan; reported_at Unix seconds;
-- duration_ms the time the agent took; suspended/blocking/killed how many processes the plan
-- suspended, found lingering in old code, killed; report the agent's report as Erlang term text
-- (~tw). node_name and channel are kept beside `node` so that the history survives
-- `nodes --forget-older-than` (no foreign key).
CREATE TABLE node_upgrades (
  id              INTEGER PRIMARY KEY,
  node            INTEGER NOT NULL DEFAULT 0,
  node_name       TEXT NOT NULL DEFAULT '',
  channel         TEXT NOT NULL DEFAULT '',
  from_generation INTEGER NOT NULL DEFAULT 0,
  to_generation   INTEGER NOT NULL DEFAULT 0,
  outcome         TEXT NOT NULL,
  reported_at     INTEGER NOT NULL,
  duration_ms     INTEGER NOT NULL DEFAULT 0,
  suspended       INTEGER NOT NULL DEFAULT 0,
  blocking        INTEGER NOT NULL DEFAULT 0,
  killed          INTEGER NOT NULL DEFAULT 0,
  report          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX node_upgrades_node ON node_upgrades (node, id);
CREATE INDEX node_upgrades_channel ON node_upgrades (channel, id);

-- Per module of a reported outcome: outcome as the agent said it (loaded, reverted, refused,
-- skipped, ...), detail its words ('' none).
CREATE TABLE node_upgrade_modules (
  upgrade INTEGER NOT NULL REFERENCES node_upgrades (id) ON DELETE CASCADE,
  module  TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT '',
  detail  TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (upgrade, module)
);
