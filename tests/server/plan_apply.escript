#!/usr/bin/env escript
%% The live-apply tests' Erlang side (tests/server/plan_apply_test.cpp):
%%   build SRC DIR    `live` 0.1.0 and 0.2.0 (SRC/v1, SRC/v2: tests/fixtures/live) compiled and laid
%%                    out as two releases DIR/rel1 and DIR/rel2 (.app, .rel, start.boot by
%%                    systools:make_script), and a node root DIR/root whose lib/ holds both
%%                    versions of `live` (links to the releases' own).
%%   run SCENARIO DIR AGENT_EBIN UP DOWN
%%                    this node (an escript is one) runs live 0.1.0 from DIR/root, with the agent's
%%                    ebin on its path, and applies the plan terms in the files UP and DOWN
%%                    (term_to_binary, written by the test from the store) with
%%                    codestore_agent_apply:apply/2; it prints what it saw as KEY=VALUE lines.
%%     load     a client calls live_srv about 1,000 times a second: up, then down
%%     linger   live_srv too busy to be suspended within the deadline (aborted);
%%              a process lingers in live_loop's old code: up, down (refused), down brutal;
%%              then up with a failing probe (reverted), up with a failing code_change (reverted)
%%     kill     the applier killed at points spread over the plan (rounds): what is left
-mode(compile).

main(["build", Src, Dir]) ->
    Erts = erlang:system_info(version),
    Otp = [{kernel, vsn(kernel)}, {stdlib, vsn(stdlib)}],
    [build(Src, Dir, N, Vsn, Erts, Otp) || {N, Vsn} <- [{1, "0.1.0"}, {2, "0.2.0"}]],
    ok = filelib:ensure_dir(filename:join([Dir, "root", "lib", "x"])),
    [ok = file:make_symlink(filename:join([Dir, "rel" ++ N, "lib", "live-" ++ V]),
                            filename:join([Dir, "root", "lib", "live-" ++ V]))
     || {N, V} <- [{"1", "0.1.0"}, {"2", "0.2.0"}]],
    io:format("built~n"),
    halt(0);
main(["run", Scenario, Dir, Agent, UpFile, DownFile]) ->
    Root = filename:join(Dir, "root"),
    true = code:add_patha(Agent),
    true = code:add_patha(filename:join([Root, "lib", "live-0.1.0", "ebin"])),
    [{module, M} = code:ensure_loaded(M) || M <- [live_srv, live_lib, live_loop, codestore_agent_apply]],
    {ok, _} = live_srv:start(),
    Up = plan(UpFile),
    Down = plan(DownFile),
    try scenario(Scenario, Root, Up, Down)
    catch C:R:St -> out("crash", "~0p", [{C, R, St}])
    end,
    halt(0).

%% --- Scenarios ---------------------------------------------------------------------------------

scenario("load", Root, Up, Down) ->
    %% The plan's object code is what its MD5s say (beam_lib's MD5).
    out("md5s", "~0p", [lists:usort([beam_lib:md5(C) =:= {ok, {M, Md5}}
                                      || P <- [Up, Down], #{module := MB} = Mod <- maps:get(modules, P),
                                         M <- [binary_to_atom(MB, utf8)],
                                         {CodeKey, Md5Key} <- [{from_code, from_md5}, {to_code, to_md5}],
                                         C <- [maps:get(CodeKey, Mod)], Md5 <- [maps:get(Md5Key, Mod)]])]),
    Srv = whereis(live_srv),
    Client = start_client(),
    wait_calls(Client, 200),
    R1 = applied("up", codestore_agent_apply:apply(Up, #{root => Root})),
    out("up_code_change", "~0p", [[{M, V, E, Res} || #{module := M, old_vsn := V, extra := E, result := Res}
                                                      <- maps:get(code_change, R1)]]),
    out("up_suspended", "~0p", [[P =:= Srv || P <- maps:get(suspended, R1)]]),
    out("state_up", "~0p", [sys:get_state(live_srv)]),
    loaded(Root),
    wait_calls(Client, 200),
    R2 = applied("down", codestore_agent_apply:apply(Down, #{root => Root})),
    out("down_code_change", "~0p", [[{M, V, E, Res} || #{module := M, old_vsn := V, extra := E, result := Res}
                                                        <- maps:get(code_change, R2)]]),
    out("state_down", "~0p", [sys:get_state(live_srv)]),
    loaded(Root),
    wait_calls(Client, 200),
    stop_client(Client),
    out("same_pid", "~0p", [whereis(live_srv) =:= Srv]);
scenario("linger", Root, Up, Down) ->
    %% What is refused before anything is touched, and what is already done.
    NeedsRestart = Up#{needs_restart => [#{kind => config, app => <<"live">>, subject => <<"env">>,
                                           message => <<"env changed">>}]},
    {error, RN} = codestore_agent_apply:apply(NeedsRestart, #{root => Root}),
    out("restart_refused", "~0p", [{maps:get(outcome, RN), element(1, maps:get(reason, RN))}]),
    {ok, RA} = codestore_agent_apply:apply(Down, #{root => Root}),
    out("down_at_from", "~0p", [maps:get(outcome, RA)]),
    %% Bounded in time: live_srv busy for longer than the deadline cannot be suspended; the plan
    %% stops, nothing changes, and the process is resumed once it answers.
    Self = self(),
    spawn(fun() -> Self ! {busy, gen_server:call(live_srv, {busy, 800}, 5000)} end),
    receive after 100 -> ok end,
    {error, R0} = codestore_agent_apply:apply(Up, #{root => Root, deadline => 200}),
    out("busy_outcome", "~0p", [maps:get(outcome, R0)]),
    out("busy_reason", "~0p", [element(1, maps:get(reason, R0))]),
    receive {busy, ok} -> ok end,
    out("busy_status", "~0p", [sys_status(live_srv)]),
    out("busy_where", "~0p", [where(Up)]),
    L = live_loop:start(),
    R1 = applied("up", codestore_agent_apply:apply(Up, #{root => Root})),
    out("up_lingering", "~0p", [[{P =:= L, F} || #{pid := P, current_function := F} <- maps:get(lingering, R1)]]),
    out("ping_up", "~0p", [ping(L)]),
    {error, R2} = codestore_agent_apply:apply(Down, #{root => Root}),
    out("soft_outcome", "~0p", [maps:get(outcome, R2)]),
    out("soft_reason", "~0p", [maps:get(reason, R2)]),
    out("soft_blocking", "~0p", [[{P =:= L, F} || #{pid := P, current_function := F} <- maps:get(blocking, R2)]]),
    out("soft_suspended", "~0p", [maps:get(suspended, R2)]),
    loaded(Root),
    R3 = applied("brutal", codestore_agent_apply:apply(Down, #{root => Root, brutal => true})),
    out("brutal_killed", "~0p", [[{P =:= L, F} || #{pid := P, current_function := F} <- maps:get(killed, R3)]]),
    out("loop_alive", "~0p", [is_process_alive(L)]),
    out("state_down", "~0p", [sys:get_state(live_srv)]),
    loaded(Root),
    %% A health probe that fails after the switch: the reverse plan takes the node back.
    {error, R4} = codestore_agent_apply:apply(Up, #{root => Root, probe => {erlang, is_atom, [1]}}),
    out("probe_outcome", "~0p", [maps:get(outcome, R4)]),
    out("probe_reason", "~0p", [maps:get(reason, R4)]),
    out("probe_reverse", "~0p", [maps:get(outcome, maps:get(reverse, R4))]),
    out("state_probe", "~0p", [sys:get_state(live_srv)]),
    loaded(Root),
    %% A code_change that fails after the switch (Extra it does not match): the old code goes
    %% back inside the critical section, before anything is resumed.
    Bad = Up#{modules => [case M of
                              #{module := <<"live_srv">>} -> M#{extra => {"0.1.0", "9.9.9"}};
                              _ -> M
                          end || M <- maps:get(modules, Up)]},
    {error, R5} = codestore_agent_apply:apply(Bad, #{root => Root}),
    out("cc_outcome", "~0p", [maps:get(outcome, R5)]),
    out("cc_back", "~0p", [element(2, maps:get(reason, R5))]),
    out("cc_suspended", "~0p", [length(maps:get(suspended, R5))]),
    out("state_cc", "~0p", [sys:get_state(live_srv)]),
    out("answers", "~0p", [catch gen_server:call(live_srv, bump)]),
    loaded(Root);
scenario("kill", Root, Up, Down) ->
    Srv = whereis(live_srv),
    Client = start_client(),
    wait_calls(Client, 100),
    %% How long a whole apply takes here (the second one: the first loads what it calls).
    {ok, _} = codestore_agent_apply:apply(Up, #{root => Root}),
    {ok, _} = codestore_agent_apply:apply(Down, #{root => Root}),
    {T, {ok, _}} = timer:tc(codestore_agent_apply, apply, [Up, #{root => Root}]),
    {ok, _} = codestore_agent_apply:apply(Down, #{root => Root}),
    Tally = kill_rounds(0, max(1, T div 20), Up, Down, Root, #{bad => [], guarded => []}),
    out("kill_rounds", "~0p", [maps:get(rounds, Tally)]),
    out("kill_from", "~0p", [maps:get(from, Tally, 0)]),
    out("kill_to", "~0p", [maps:get(to, Tally, 0)]),
    out("kill_mixed", "~0p", [maps:get(mixed, Tally, 0)]),
    out("kill_running", "~0p", [maps:get(running, Tally, 0)]),
    out("kill_bad", "~0p", [maps:get(bad, Tally)]),
    %% The rounds where the guardian outlived the killed caller: what it did ({Outcome, Count}).
    out("kill_guarded", "~0p", [count_each(maps:get(guarded, Tally))]),
    loaded(Root),
    wait_calls(Client, 100),
    stop_client(Client),
    out("same_pid", "~0p", [whereis(live_srv) =:= Srv]).

%% Round I kills the applier I * Step microseconds after it started (Step: a twentieth of a whole
%% apply), until five rounds ended on each side of the switch (at most 100 rounds: 5 applies' time).
kill_rounds(I, Step, Up, Down, Root, Acc) ->
    Done = maps:get(from, Acc, 0) >= 5 andalso maps:get(to, Acc, 0) >= 5,
    case Done orelse I =:= 100 of
        true -> Acc#{rounds => I};
        false ->
            Self = self(),
            A = spawn(fun() -> codestore_agent_apply:apply(Up, #{root => Root, notify => Self}) end),
            spin(I * Step),
            exit(A, kill),
            Guarded = quiet(),
            Where = where(Up),
            Status = sys_status(live_srv),
            Shape = tuple_size(sys:get_state(live_srv)),
            Bad = case {Where, Shape} of {from, 2} -> []; {to, 3} -> []; _ -> [{I, Where, Shape}] end,
            case Where of
                to -> applied("kill_down", codestore_agent_apply:apply(Down, #{root => Root}), quiet);
                _ -> ok
            end,
            kill_rounds(I + 1, Step, Up, Down, Root,
                        Acc#{Where => maps:get(Where, Acc, 0) + 1, Status => maps:get(Status, Acc, 0) + 1,
                             bad => maps:get(bad, Acc) ++ Bad, guarded => maps:get(guarded, Acc) ++ Guarded})
    end.

applied(Key, Result) ->
    applied(Key, Result, loud).

applied(Key, {Tag, R}, How) ->
    case How of
        loud ->
            out(Key ++ "_outcome", "~0p", [{Tag, maps:get(outcome, R)}]),
            out(Key ++ "_report", "~0p", [R]);
        quiet ->
            case Tag of
                ok -> ok;
                _ -> out(Key ++ "_report", "~0p", [R])
            end
    end,
    R.

%% --- The client: gen_server:call about 1,000 times a second --------------------------------------

start_client() ->
    spawn(fun() -> client(0, 0, none) end).

client(Ok, Failed, First) ->
    receive
        {stop, From} -> From ! {client, Ok, Failed, First};
        {count, From} -> From ! {count, Ok + Failed}, client(Ok, Failed, First)
    after 1 ->
        case catch gen_server:call(live_srv, bump, 10000) of
            {_, N} when is_integer(N) -> client(Ok + 1, Failed, First);
            Other when First =:= none -> client(Ok, Failed + 1, Other);
            _ -> client(Ok, Failed + 1, First)
        end
    end.

%% Until the client made N more calls.
wait_calls(Client, N) ->
    Start = count(Client),
    wait_calls(Client, Start + N, Start).

wait_calls(Client, Target, _) ->
    case count(Client) >= Target of
        true -> ok;
        false -> receive after 5 -> wait_calls(Client, Target, x) end
    end.

count(Client) ->
    Client ! {count, self()},
    receive {count, C} -> C end.

stop_client(Client) ->
    Client ! {stop, self()},
    receive
        {client, Ok, Failed, First} ->
            out("client_ok", "~0p", [Ok]),
            out("client_failed", "~0p", [Failed]),
            out("client_first_failure", "~0p", [First])
    end.

%% --- What the node runs ----------------------------------------------------------------------------

ping(P) ->
    P ! {self(), ping},
    receive {pong, V} -> V after 5000 -> no_answer end.

%% from, to or mixed: the plan's modules by MD5.
where(#{modules := Mods}) ->
    Md5 = fun(M) -> case erlang:module_loaded(M) of true -> erlang:get_module_info(M, md5); false -> none end end,
    States = [case Md5(binary_to_atom(M, utf8)) of F -> from; T -> to; _ -> other end
              || #{module := M, from_md5 := F, to_md5 := T} <- Mods],
    case lists:usort(States) of
        [One] -> One;
        _ -> mixed
    end.

sys_status(Name) ->
    {status, _, _, [_, Status | _]} = sys:get_status(Name),
    Status.

%% Until no process runs the applier's code (the guardian finished).
quiet() ->
    Busy = [P || P <- erlang:processes(), P =/= self(),
                 {current_stacktrace, St} <- [erlang:process_info(P, current_stacktrace)],
                 lists:keymember(codestore_agent_apply, 1, St)],
    case Busy of
        [] -> flush();
        _ -> receive after 1 -> quiet() end
    end.

%% The guardians' reports to the killed callers' notify: their outcomes.
flush() ->
    receive {codestore_agent_apply, #{outcome := O}} -> [O | flush()] after 0 -> [] end.

count_each(L) ->
    [{X, length([Y || Y <- L, Y =:= X])} || X <- lists:usort(L)].

spin(Us) ->
    End = erlang:monotonic_time(microsecond) + Us,
    spin_until(End).

spin_until(End) ->
    case erlang:monotonic_time(microsecond) >= End of
        true -> ok;
        false -> spin_until(End)
    end.

%% "loaded=M PATH MD5;..." for the modules loaded from under Root (tests/server/erl_node.h's
%% loaded_line, which check_loaded reads).
loaded(Root) ->
    L = [lists:flatten([atom_to_list(M), " ", F, " ", [io_lib:format("~2.16.0b", [B]) || <<B>> <= M:module_info(md5)]])
         || {M, F} <- code:all_loaded(), is_list(F), lists:prefix(Root ++ "/", F)],
    io:format("loaded=~s~n", [lists:join(";", L)]).

out(Key, Fmt, Args) ->
    io:format("~s=" ++ Fmt ++ "~n", [Key | Args]).

plan(File) ->
    {ok, B} = file:read_file(File),
    binary_to_term(B).

%% --- The releases ----------------------------------------------------------------------------------

vsn(App) ->
    _ = application:load(App),
    {ok, V} = application:get_key(App, vsn),
    V.

build(Src, Dir, N, Vsn, Erts, Otp) ->
    Root = filename:join(Dir, "rel" ++ integer_to_list(N)),
    Ebin = filename:join([Root, "lib", "live-" ++ Vsn, "ebin"]),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    Files = filelib:wildcard(filename:join([Src, "v" ++ integer_to_list(N), "*.erl"])),
    Mods = [begin {ok, M} = compile:file(F, [{outdir, Ebin}, report]), M end || F <- Files],
    write(filename:join(Ebin, "live.app"),
          {application, live, [{description, "live upgrade fixture"}, {vsn, Vsn}, {modules, Mods},
                               {registered, [live_srv]}, {applications, [kernel, stdlib]}]}),
    [ok = file:make_symlink(code:lib_dir(A), filename:join([Root, "lib", atom_to_list(A) ++ "-" ++ V]))
     || {A, V} <- Otp],
    RelDir = filename:join([Root, "releases", Vsn]),
    ok = filelib:ensure_dir(filename:join(RelDir, "x")),
    write(filename:join(RelDir, "live.rel"), {release, {"live", Vsn}, {erts, Erts}, Otp ++ [{live, Vsn}]}),
    {ok, _, _} = systools:make_script(filename:join(RelDir, "live"),
                                      [{path, [filename:join([Root, "lib", "*", "ebin"])]}, {outdir, RelDir},
                                       silent]),
    ok = file:rename(filename:join(RelDir, "live.boot"), filename:join(RelDir, "start.boot")),
    ok = file:delete(filename:join(RelDir, "live.script")).

write(File, Term) ->
    ok = file:write_file(File, io_lib:format("~p.~n", [Term])).
