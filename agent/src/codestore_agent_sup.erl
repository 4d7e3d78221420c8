%% The agent's supervisor: one child, the connection (codestore_agent_conn). The connection
%% handles the server's absence itself (reconnecting with backoff), so a restart here means a
%% bug in it; five in ten seconds stop the application rather than spin.
-module(codestore_agent_sup).
-vsn(?VSN).
-behaviour(supervisor).

-export([start_link/0, init/1]).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Conn = #{id => codestore_agent_conn,
             start => {codestore_agent_conn, start_link, []},
             restart => permanent,
             shutdown => 5000,
             type => worker,
             modules => [codestore_agent_conn]},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Conn]}}.
