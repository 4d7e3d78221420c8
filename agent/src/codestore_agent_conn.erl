%% The agent's connection to `codestore serve` (docs/agent-protocol.md has the frames, the
%% handshake and the rules this follows).
%%
%% Frames are {packet, 4}: a 32-bit big-endian length, then term_to_binary(Term). The server's
%% terms are decoded with binary_to_term(B, [safe]): a server cannot make this node create atoms
%% (or funs) it does not already have. Anything that does not decode, or is no frame of the
%% protocol, ends the connection, and the agent connects again as after a network failure.
%%
%% States: not connected (a timer for the next attempt), connected (hello sent), welcomed (the
%% server answered the hello). A dropped connection or a refused attempt waits with backoff,
%% 200 ms doubling up to 5 s, then tries again; a welcome resets the backoff.
%%
%% A generation announcement {generation, Channel, G, PlanTerm, ApplyOpts} (protocol 2; protocol
%% 1's {generation, Channel, G, PlanTerm} is read too, with no options) is handed to a separate
%% process that calls codestore_agent_apply:apply(PlanTerm, Opts), Opts the deploy's options
%% (deadline, brutal, force, probe) over the connection's own, so that the connection keeps reading
%% (and notices the server going away) while a plan runs. Its report is sent when it ends;
%% when the connection is down then, the report waits and goes out after the next welcome. One
%% plan runs at a time: an announcement that comes while one runs replaces any earlier waiting
%% one (only the newest generation matters) and starts when the running one ends.
-module(codestore_agent_conn).
-vsn(?VSN).
-behaviour(gen_server).

-export([start_link/0, status/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% Exposed for tests and for the apply module's callers: what the hello says.
-export([hello/2, server_address/0, vocabulary/0]).

-define(PROTOCOL, 2).
-define(DEFAULT_PORT, 4380).
-define(BACKOFF_MIN, 200).
-define(BACKOFF_MAX, 5000).
-define(CONNECT_TIMEOUT, 5000).
-define(WATCH_LOADER, 1000).

-record(st, {
    server :: {string(), inet:port_number()} | {error, term()},
    sock = undefined :: gen_tcp:socket() | undefined,
    welcomed = false :: boolean(),
    backoff = ?BACKOFF_MIN :: pos_integer(),
    timer = undefined :: reference() | undefined,
    channel = undefined :: binary() | undefined,    % as the server named it
    generation = 0 :: non_neg_integer(),            % the last generation applied (or welcomed at)
    running = undefined :: {pid(), reference(), binary(), integer(), integer()} | undefined,
    waiting = undefined :: {binary(), integer(), term(), map()} | undefined,
    reports = [] :: [term()],                       % reports not sent yet, oldest first
    connects = 0 :: non_neg_integer(),              % welcomes so far
    loader_ports = #{} :: #{port() => reference()}, % erl_prim_loader's, monitored (watch_loader/1)
    last_error = undefined :: term()
}).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

status() ->
    gen_server:call(?MODULE, status).

init([]) ->
    %% serve's agent.config, read once (through the boot server) and only when the environment
    %% leaves the server or the channel to it.
    Announced = case {application:get_env(codestore_agent, server),
                      application:get_env(codestore_agent, channel)} of
                    {{ok, _}, {ok, _}} -> [];
                    _ -> announced()
                end,
    Server = server_address(Announced),
    case Server of
        {error, Why} -> logger:error("codestore_agent: no server: ~tp", [Why]);
        _ -> ok
    end,
    self() ! connect,
    self() ! watch_loader,
    {ok, #st{server = Server, channel = configured_channel(Announced)}}.

%% The channel to follow, as the first hello names it: the application's `channel`, else the
%% one serve's agent.config names (a `--channel NAME=WHERE` rule gives this node that channel),
%% else undefined (the server's default channel, which its welcome names and later hellos repeat).
configured_channel(Announced) ->
    case application:get_env(codestore_agent, channel) of
        {ok, C} -> channel_name(C);
        undefined -> channel_name(proplists:get_value(channel, Announced, undefined))
    end.

channel_name(C) when is_binary(C), C =/= <<>> -> C;
channel_name(C) when is_list(C), C =/= [] -> unicode:characters_to_binary(C);
channel_name(C) when is_atom(C), C =/= undefined -> atom_to_binary(C, utf8);
channel_name(_) -> undefined.

%% The server's address: the application's `server` ("HOST:PORT"), else the boot server's host
%% (init's -hosts, the first one) on the agent port: the application's `port`, else the one the
%% boot server announces in this application's priv/agent.config, else ?DEFAULT_PORT.
-spec server_address() -> {string(), inet:port_number()} | {error, term()}.
server_address() ->
    server_address(announced()).

%% `Announced`: agent.config's terms (announced/0).
server_address(Announced) ->
    case application:get_env(codestore_agent, server) of
        {ok, Text} -> parse_server(Text);
        undefined ->
            case init:get_argument(hosts) of
                {ok, [[Host | _] | _]} -> {Host, agent_port(Announced)};
                _ -> {error, "no server: set codestore_agent's `server` (\"HOST:PORT\") or start the node with -hosts"}
            end
    end.

parse_server(Text) when is_binary(Text) -> parse_server(unicode:characters_to_list(Text));
parse_server(Text) when is_list(Text) ->
    case string:split(Text, ":", trailing) of
        [Host, PortText] when Host =/= [] ->
            case catch list_to_integer(PortText) of
                P when is_integer(P), P > 0, P < 65536 -> {Host, P};
                _ -> {error, {bad_server, Text}}
            end;
        _ -> {error, {bad_server, Text}}
    end;
parse_server(Other) -> {error, {bad_server, Other}}.

agent_port(Announced) ->
    case application:get_env(codestore_agent, port) of
        {ok, P} when is_integer(P), P > 0, P < 65536 -> P;
        _ ->
            case proplists:get_value(agent_port, Announced, ?DEFAULT_PORT) of
                P when is_integer(P), P > 0, P < 65536 -> P;
                _ -> ?DEFAULT_PORT
            end
    end.

%% What serve announces in lib/codestore_agent[-Vsn]/priv/agent.config: {agent_port, Port} and,
%% for a node a channel rule serves, {channel, Name}. Read through erl_prim_loader, so that it
%% comes from the boot server when the node loads from one; [] when there is none.
announced() ->
    case code:priv_dir(codestore_agent) of
        {error, _} -> [];
        Priv ->
            case erl_prim_loader:get_file(filename:join(Priv, "agent.config")) of
                {ok, Bin, _} ->
                    case consult_bin(Bin) of
                        {ok, Terms} -> Terms;
                        _ -> []
                    end;
                error -> []
            end
    end.

consult_bin(Bin) ->
    try
        consult_tokens(unicode:characters_to_list(Bin), [])
    catch _:_ -> error
    end.

consult_tokens(Text, Acc) ->
    case erl_scan:tokens([], Text, 1) of
        {done, {ok, Tokens, _}, Rest} ->
            {ok, Term} = erl_parse:parse_term(Tokens),
            consult_tokens(Rest, [Term | Acc]);
        _ -> {ok, lists:reverse(Acc)}
    end.

%% Every atom a server's frame may hold outside the plan term (docs/agent-protocol.md, "Atoms").
%% Frames are decoded with binary_to_term(B, [safe]), which refuses an atom the node does not
%% have yet: naming them here makes them exist wherever this module is loaded. The plan term's
%% atoms are codestore_agent_apply:vocabulary/0's (the applier is loaded when the application
%% starts). Names from the store (modules, applications, releases, channels) travel as binaries.
-spec vocabulary() -> [atom()].
vocabulary() ->
    [welcome, refused, generation, ping, pong, hello, report, channel, server_time,
     deadline, brutal, force, probe, canary].

%% The hello's body: who this node is.
-spec hello(binary() | undefined, non_neg_integer()) -> map().
hello(Channel, Generation) ->
    {ok, Vsn} = application:get_key(codestore_agent, vsn),
    #{protocol => ?PROTOCOL,
      node => node(),
      name => node_name(),
      agent_vsn => list_to_binary(Vsn),
      otp_release => list_to_binary(erlang:system_info(otp_release)),
      erts_vsn => list_to_binary(erlang:system_info(version)),
      release => release(),
      channel => Channel,
      generation => Generation,
      modules => loaded_md5s()}.

%% What the node is called in the store: node() on a distributed node; else the application's
%% `name` when set; else nonode@Host/OsPid (a node that is not alive has no name of its own, and
%% all of them are nonode@nohost).
node_name() ->
    case {is_alive(), application:get_env(codestore_agent, name)} of
        {true, _} -> atom_to_binary(node());
        {false, {ok, Name}} -> unicode:characters_to_binary(Name);
        {false, undefined} ->
            {ok, Host} = inet:gethostname(),
            unicode:characters_to_binary(["nonode@", Host, "/", os:getpid()])
    end.

%% The release the node runs: release_handler's current one when it runs (sasl), else the boot
%% script's id ({Name, Vsn} of the .rel a boot script was made from), else undefined.
release() ->
    Rh = case whereis(release_handler) of
             undefined -> [];
             _ -> try release_handler:which_releases(current) catch _:_ -> [] end
         end,
    case Rh of
        [{Name, Vsn, _, _} | _] -> {list_to_binary(Name), list_to_binary(Vsn)};
        [] ->
            case init:script_id() of
                {Name, Vsn} when is_list(Name), is_list(Vsn) ->
                    {unicode:characters_to_binary(Name), unicode:characters_to_binary(Vsn)};
                _ -> undefined
            end
    end.

%% Every loaded module with the MD5 of its loaded code (Mod:module_info(md5), what
%% beam_lib:md5/1 gives for its file), sorted.
loaded_md5s() ->
    lists:sort([{M, MD5} || {M, _} <- code:all_loaded(), MD5 <- [md5_of(M)], is_binary(MD5)]).

md5_of(M) ->
    try M:module_info(md5) catch _:_ -> undefined end.

handle_call(status, _From, S) ->
    Reply = #{server => S#st.server,
              connected => S#st.sock =/= undefined,
              welcomed => S#st.welcomed,
              channel => S#st.channel,
              generation => S#st.generation,
              applying => S#st.running =/= undefined,
              pending_reports => length(S#st.reports),
              connects => S#st.connects,
              last_error => S#st.last_error},
    {reply, Reply, S};
handle_call(_, _From, S) ->
    {reply, {error, unknown_call}, S}.

handle_cast(_, S) ->
    {noreply, S}.

handle_info(connect, S = #st{server = {error, _}}) ->
    {noreply, S};
handle_info(connect, S = #st{server = {Host, Port}}) ->
    S1 = S#st{timer = undefined},
    Opts = [binary, {packet, 4}, {active, once}, {keepalive, true}, {nodelay, true}],
    case gen_tcp:connect(Host, Port, Opts, ?CONNECT_TIMEOUT) of
        {ok, Sock} ->
            Hello = {hello, hello(S#st.channel, S#st.generation)},
            case gen_tcp:send(Sock, term_to_binary(Hello)) of
                ok -> {noreply, S1#st{sock = Sock, welcomed = false}};
                {error, Why} ->
                    gen_tcp:close(Sock),
                    {noreply, retry(S1, {send, Why})}
            end;
        {error, Why} ->
            {noreply, retry(S1, {connect, Why})}
    end;
handle_info({tcp, Sock, Bin}, S = #st{sock = Sock}) ->
    Decoded = try {ok, binary_to_term(Bin, [safe])} catch _:_ -> bad end,
    case Decoded of
        {ok, Term} ->
            case frame(Term, S) of
                {ok, S1} ->
                    ok = inet:setopts(Sock, [{active, once}]),
                    {noreply, S1};
                {drop, Why, S1} ->
                    {noreply, drop(S1, Why)}
            end;
        bad ->
            {noreply, drop(S, undecodable_frame)}
    end;
handle_info({tcp_closed, Sock}, S = #st{sock = Sock}) ->
    {noreply, drop(S, closed)};
handle_info({tcp_error, Sock, Why}, S = #st{sock = Sock}) ->
    {noreply, drop(S, Why)};
handle_info({'DOWN', Ref, process, Pid, Result}, S = #st{running = {Pid, Ref, Ch, From, To}}) ->
    {Outcome, Report} = outcome(Result),
    S1 = S#st{running = undefined},
    S2 = case Outcome of
             applied -> S1#st{generation = To};
             already -> S1#st{generation = To};
             _ -> S1
         end,
    S3 = queue_report({report, #{channel => Ch, from => From, to => To, outcome => Outcome,
                                 report => Report}}, S2),
    {noreply, start_waiting(S3)};
handle_info(watch_loader, S) ->
    erlang:send_after(?WATCH_LOADER, self(), watch_loader),
    {noreply, watch_loader(S)};
handle_info({'DOWN', Ref, port, P, _}, S = #st{loader_ports = Watched})
  when is_map_key(P, Watched), map_get(P, Watched) =:= Ref ->
    case whereis(erl_prim_loader) of
        Loader when is_pid(Loader) -> Loader ! {'EXIT', P, normal};
        _ -> ok
    end,
    {noreply, S#st{loader_ports = maps:remove(P, Watched)}};
handle_info(_, S) ->
    {noreply, S}.

terminate(_, #st{sock = Sock}) ->
    Sock =/= undefined andalso gen_tcp:close(Sock),
    ok.

%% One frame from the server.
frame({welcome, #{channel := Ch, generation := G}}, S) when is_binary(Ch), is_integer(G) ->
    logger:notice("codestore_agent: connected to ~s:~p, channel ~s generation ~p",
                  [element(1, S#st.server), element(2, S#st.server), Ch, G]),
    S1 = S#st{welcomed = true, backoff = ?BACKOFF_MIN, channel = Ch,
              generation = case S#st.generation of 0 -> G; Mine -> Mine end,
              connects = S#st.connects + 1},
    {ok, flush_reports(S1)};
frame({refused, Why}, S) ->
    {drop, {refused, Why}, S};
frame({generation, Ch, G, Plan}, S) ->
    frame({generation, Ch, G, Plan, #{}}, S);
frame({generation, Ch, G, Plan, ApplyOpts}, S = #st{welcomed = true})
  when is_binary(Ch), is_integer(G), is_map(ApplyOpts) ->
    S1 = S#st{waiting = {Ch, G, Plan, ApplyOpts}},
    {ok, case S1#st.running of undefined -> start_waiting(S1); _ -> S1 end};
frame(ping, S = #st{sock = Sock}) ->
    _ = gen_tcp:send(Sock, term_to_binary(pong)),
    {ok, S};
frame(Other, S) ->
    {drop, {unexpected_frame, Other}, S}.

%% Runs the waiting plan, if any, in its own process.
start_waiting(S = #st{waiting = undefined}) -> S;
start_waiting(S = #st{waiting = {Ch, G, Plan, ApplyOpts}, generation = From}) ->
    Opts = maps:merge(#{channel => Ch, from => From, to => G, node => node()}, apply_opts(ApplyOpts)),
    {Pid, Ref} = spawn_monitor(fun() -> exit({codestore_agent_result, apply_plan(Plan, Opts)}) end),
    S#st{waiting = undefined, running = {Pid, Ref, Ch, From, G}}.

%% The deploy's options as apply/2 takes them (docs/agent-protocol.md, "Announcements"): deadline
%% (ms), brutal, force, and probe {<<"M">>, <<"F">>} as {M, F, []}. The probe's two names are the
%% only atoms a server's frame makes on this node: the deploy names a function the node has. An
%% option of another type is left out (apply/2's default).
apply_opts(O) ->
    maps:from_list(
      [{deadline, D} || D <- [maps:get(deadline, O, undefined)], is_integer(D), D > 0] ++
      [{K, V} || K <- [brutal, force], V <- [maps:get(K, O, undefined)], is_boolean(V)] ++
      [{probe, {binary_to_atom(M), binary_to_atom(F), []}}
       || {M, F} <- [maps:get(probe, O, undefined)], is_binary(M), is_binary(F),
          byte_size(M) > 0, byte_size(M) < 256, byte_size(F) > 0, byte_size(F) < 256]).

%% The contract with the applier (docs/agent-protocol.md, "Reports"):
%% codestore_agent_apply:apply(PlanTerm, Opts) -> {ok, Report} | {error, Report}.
apply_plan(Plan, Opts) ->
    %% Loaded when the application started (codestore_agent:start/2): never loaded here, which
    %% could wait for a boot server that is gone.
    case erlang:module_loaded(codestore_agent_apply) andalso
         erlang:function_exported(codestore_agent_apply, apply, 2) of
        true -> codestore_agent_apply:apply(Plan, Opts);
        false ->
            {error, #{outcome => refused,
                      reason => <<"codestore_agent_apply is not loaded: this agent has no applier "
                                  "(codestore_agent_apply:apply/2)">>}}
    end.

%% The applier's result as {Outcome, Report}: the report's own `outcome` when it names one of
%% the six (docs/plan-apply.md); else applied for {ok, _} and failed for the rest.
outcome({codestore_agent_result, {ok, Report}}) -> {report_outcome(Report, applied), Report};
outcome({codestore_agent_result, {error, Report}}) -> {report_outcome(Report, failed), Report};
outcome({codestore_agent_result, Other}) ->
    {failed, #{reason => <<"codestore_agent_apply:apply/2 returned neither {ok, _} nor {error, _}">>,
               returned => Other}};
outcome(Crash) ->
    {failed, #{reason => <<"the applying process exited">>, exit => Crash}}.

report_outcome(Report, Default) ->
    Given = if is_map(Report) -> maps:get(outcome, Report, Default);
               is_list(Report) -> proplists:get_value(outcome, Report, Default);
               true -> Default
            end,
    case lists:member(Given, [applied, already, refused, aborted, reverted, failed]) of
        true -> Given;
        false -> Default
    end.

queue_report(Report, S) ->
    flush_reports(S#st{reports = S#st.reports ++ [Report]}).

flush_reports(S = #st{sock = undefined}) -> S;
flush_reports(S = #st{welcomed = false}) -> S;
flush_reports(S = #st{reports = []}) -> S;
flush_reports(S = #st{sock = Sock, reports = [R | Rest]}) ->
    case gen_tcp:send(Sock, term_to_binary(R)) of
        ok -> flush_reports(S#st{reports = Rest});
        {error, Why} -> drop(S, {send, Why})
    end.

%% The connection is gone (or must go): close it and try again later.
drop(S = #st{sock = Sock}, Why) ->
    Sock =/= undefined andalso gen_tcp:close(Sock),
    logger:notice("codestore_agent: connection to ~p dropped: ~tp", [S#st.server, Why]),
    retry(S#st{sock = undefined, welcomed = false}, Why).

%% On a node that loads from a boot server (-loader inet), OTP 25's erl_prim_loader keeps the
%% port of its connection in its state and learns of its end only from an 'EXIT' message. When
%% the server goes away (a serve restart), the port receives tcp_closed, which the loader's idle
%% loop drops, and exits without the loader being told; its next request is sent on the dead
%% port and waits for its 60 s timeout (INET_IDLE_TIMEOUT) before it connects again, so the next
%% plan's reads (a moved application's .app and code path) would wait a minute. The agent
%% monitors the loader's TCP ports and, when one ends, sends the loader the 'EXIT' message it
%% would have had: its loop takes it as the end of that connection (one that is not its current
%% connection is ignored), and its next request connects at once. New ports (the loader connects
%% again after its idle timeout) are found every ?WATCH_LOADER ms.
watch_loader(S = #st{loader_ports = Watched}) ->
    Ports = case {init:get_argument(loader), whereis(erl_prim_loader)} of
                {{ok, [["inet"] | _]}, Loader} when is_pid(Loader) ->
                    [P || P <- erlang:ports(),
                          erlang:port_info(P, connected) =:= {connected, Loader},
                          erlang:port_info(P, name) =:= {name, "tcp_inet"},
                          not maps:is_key(P, Watched)];
                _ -> []
            end,
    S#st{loader_ports = lists:foldl(fun(P, M) -> M#{P => erlang:monitor(port, P)} end, Watched, Ports)}.

retry(S = #st{backoff = B}, Why) ->
    Timer = erlang:send_after(B, self(), connect),
    S#st{timer = Timer, backoff = min(B * 2, ?BACKOFF_MAX), last_error = Why}.
