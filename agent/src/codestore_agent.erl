%% codestore's node agent (docs/agent-protocol.md): a small OTP application that connects a
%% running node to `codestore serve`'s agent port, says who the node is, receives each new
%% generation of its channel and hands it to codestore_agent_apply:apply/2, and reports the
%% outcome. This module is the application callback and the entry points.
%%
%%   erl ... -pa ROOT/lib/codestore_agent/ebin -s codestore_agent       (interactive mode)
%%   {codestore_agent, "0.1.0"} in the release's .rel                   (embedded mode)
%%
%% Its environment: `server` ("HOST:PORT", read when the application starts), `channel` (the
%% channel it follows; default: the one serve serves by default), `port` (the agent port when
%% only the host is known; default: what serve announces in priv/agent.config, else 4380).
-module(codestore_agent).
-vsn(?VSN).
-behaviour(application).

-export([start/0, stop/0, status/0]).
-export([start/2, stop/1]).

%% Starts the application (and kernel and stdlib, already running on any node). For `-s`:
%% init calls it with no argument once the node has started.
-spec start() -> ok | {error, term()}.
start() ->
    case application:ensure_all_started(codestore_agent) of
        {ok, _} -> ok;
        {error, _} = E -> E
    end.

-spec stop() -> ok | {error, term()}.
stop() ->
    application:stop(codestore_agent).

%% What the connection knows now (for people and tests): server, state, channel, generation.
-spec status() -> map().
status() ->
    codestore_agent_conn:status().

start(_Type, _Args) ->
    %% The applier is loaded now, while the code path is surely reachable (the agent itself was
    %% just loaded from it): a plan is applied without asking the code server or the boot
    %% server for anything, so that a server restart or a network failure during a plan cannot
    %% block it. Absent (not built in), the agent refuses every plan, saying so.
    _ = code:ensure_loaded(codestore_agent_apply),
    codestore_agent_sup:start_link().

stop(_State) ->
    ok.
