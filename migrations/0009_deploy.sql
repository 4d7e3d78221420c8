-- codestore schema 9: what a deploy asks of the nodes that apply it, canary rollouts, and the
-- agent nodes an operator excluded (issue 15 items 4 and 5; docs/agent-protocol.md,
-- docs/operator-guide.md "Live upgrades").

-- The options the agents apply a generation with (codestore_agent_apply:apply/2's Opts; a
-- deploy's or channel rollback's --deadline, --brutal, --force, --probe): apply_deadline_ms 0
-- is the agent's default; apply_probe 'M:F' (M:F() must return ok or true), '' the default
-- probe. A node catching up several generations at once applies the newest's options.
ALTER TABLE generations ADD COLUMN apply_deadline_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN apply_brutal INTEGER NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN apply_force INTEGER NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN apply_probe TEXT NOT NULL DEFAULT '';

-- A canary deploy's candidate: a generation written after the channel's current one that only
-- its canary nodes apply while `generation` stays what every other node runs and boots
-- (0: none). While it is set the channel takes no other change.
ALTER TABLE channels ADD COLUMN candidate INTEGER NOT NULL DEFAULT 0;

-- excluded: 1 when an operator excluded the node (`codestore nodes exclude NAME`): never
-- upgraded automatically, never a canary. agent_connected: 1 from an agent's welcome to the
-- end of its connection (as the serve that had it last said; a serve that died leaves it
-- set until the node's next connection ends), what `deploy --wait` waits for.
ALTER TABLE nodes ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN agent_connected INTEGER NOT NULL DEFAULT 0;

-- The reason an agent gave for an outcome other than applied (its report's `reason`, as
-- Erlang term text; '' none).
ALTER TABLE node_upgrades ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- Canary rollouts (`deploy --canary N`): candidate is the generation the canaries apply first,
-- base the channel's current one when it was made; state pending, promoted (the candidate
-- became current) or dropped (the channel stayed at base; the candidate's rows are gone and
-- its number is never used again); reason says why it ended. release: the deployed release.
CREATE TABLE rollouts (
  id         INTEGER PRIMARY KEY,
  channel    TEXT NOT NULL REFERENCES channels (name),
  base       INTEGER NOT NULL,
  candidate  INTEGER NOT NULL,
  canaries   INTEGER NOT NULL,
  release    INTEGER,
  state      TEXT NOT NULL DEFAULT 'pending',
  reason     TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  ended_at   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rollouts_candidate ON rollouts (channel, candidate);

-- The nodes chosen as a rollout's canaries (by the agent listener, among its connected agents
-- of the channel at base and not excluded), with the outcome each reported for the candidate
-- ('' none yet).
CREATE TABLE rollout_canaries (
  rollout   INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
  node_name TEXT NOT NULL,
  outcome   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (rollout, node_name)
);
