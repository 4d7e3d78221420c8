#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% The `codestore shell` command language (cli/shell_command.cpp) against Erlang's real code
%% server, for the differential test (tests/loader/differential_test.cpp). Reads one
%% command per line on stdin and prints one JSON object per command, as the shell does.
%% Processes are real and run M's code: `spawn P M` puts a process in M's current instance
%% (see park/2: the shell's spawn needs no particular export of M, but a real process needs
%% M's code to wait in); `switch P` sends a message that makes it do a fully qualified call.
%% A module without a vsn (no Attr chunk) shows null, as the shell does. Paths under the
%% working directory are printed relative to it, as given.
%% Embedded mode: run with ERL_FLAGS="-mode embedded".

main(_) ->
    logger:set_primary_config(level, none),
    {ok, Cwd} = file:get_cwd(),
    loop(#{cwd => Cwd, initial => code:get_path(), procs => #{}, order => []}).

loop(St) ->
    case io:get_line(standard_io, "") of
        eof -> ok;
        {error, _} -> ok;
        Line ->
            Words = string:lexemes(string:trim(Line), " \t"),
            St1 = case Words of
                      [] -> St;
                      [Op | Args] -> run(Op, Args, St)
                  end,
            loop(St1)
    end.

run(Op, Args, St0) ->
    {Reply, St1} = try command(Op, Args, St0#{down => []})
                   catch throw:{line_error, Msg} -> {[{error, {s, Msg}}], St0#{down => []}}
                   end,
    {Downs, St2} = sweep(St1),
    Down = case Downs of
               [] -> [];
               _ -> [{down, {l, [{o, [{proc, {s, P}}, {reason, {s, R}}]} || {P, R} <- lists:sort(Downs)]}}]
           end,
    Fields = [{op, {s, Op}} | Reply] ++ Down,
    io:put_chars([json({o, Fields}), "\n"]),
    St2.

%% Processes that ended during the command: the ones a command saw end, plus any live one
%% that is gone now (a purge waits until the processes it kills are dead).
sweep(#{procs := Procs, down := Down0} = St) ->
    {Down, Procs1} =
        maps:fold(fun(Name, #{pid := Pid, ref := Ref, alive := true} = P, {D, Acc}) ->
                          case is_process_alive(Pid) of
                              true -> {D, Acc};
                              false ->
                                  Reason = receive {'DOWN', Ref, process, Pid, R} -> reason(R) end,
                                  {[{Name, Reason} | D], Acc#{Name => P#{alive => false}}}
                          end;
                     (_, _, Acc) -> Acc
                  end, {Down0, Procs}, Procs),
    {Down, St#{procs => Procs1, down => []}}.

reason(normal) -> "normal";
reason(killed) -> "killed";
reason({undef, _}) -> "undef";
reason(Other) -> lists:flatten(io_lib:format("~w", [Other])).

line_error(Fmt, Args) -> throw({line_error, lists:flatten(io_lib:format(Fmt, Args))}).

result(V) -> [{result, V}].
load_result({module, _}) -> {s, "ok"};
load_result({error, R}) -> {s, atom_to_list(R)}.

rel(File, #{cwd := Cwd}) ->
    Prefix = Cwd ++ "/",
    case lists:prefix(Prefix, File) of
        true -> lists:nthtail(length(Prefix), File);
        false -> File
    end.

vsn_text(undefined) -> null;
vsn_text(V) -> {s, lists:flatten(io_lib:format("~w", [V]))}.

proc(Name, #{procs := Procs}) ->
    case maps:find(Name, Procs) of
        {ok, P} -> P;
        error -> line_error("unknown process ~s", [Name])
    end.

%% The process ended during this command (its DOWN message taken here).
ended(Name, Reason, #{procs := Procs, down := Down} = St) ->
    P = maps:get(Name, Procs),
    St#{procs => Procs#{Name => P#{alive => false}}, down => [{Name, Reason} | Down]}.

wait_down(#{pid := Pid, ref := Ref}) ->
    receive {'DOWN', Ref, process, Pid, R} -> reason(R) end.

command("add_path", [Where, Dir], St) ->
    R = case Where of
            "first" -> code:add_patha(Dir);
            "last" -> code:add_pathz(Dir);
            _ -> line_error("add_path takes first or last", [])
        end,
    {result(case R of true -> true; {error, E} -> {s, atom_to_list(E)} end), St};
command("del_path", [Dir], St) ->
    {result(code:del_path(Dir)), St};
command("get_path", [], #{initial := Initial} = St) ->
    {result({l, [{s, rel(D, St)} || D <- code:get_path(), not lists:member(D, Initial)]}), St};
command("load", [M], St) ->
    {result(load_result(code:load_file(list_to_atom(M)))), St};
command("load_abs", [File], St) ->
    case lists:suffix(".beam", File) of
        true -> {result(load_result(code:load_abs(lists:sublist(File, length(File) - 5)))), St};
        false -> line_error("load_abs takes a FILE.beam", [])
    end;
command("load_binary", [M, File], St) ->
    case file:read_file(File) of
        {ok, Bin} -> {result(load_result(code:load_binary(list_to_atom(M), File, Bin))), St};
        {error, _} -> line_error("cannot read ~s", [File])
    end;
command("ensure_loaded", [M], St) ->
    {result(load_result(code:ensure_loaded(list_to_atom(M)))), St};
command("delete", [M], St) ->
    {result(code:delete(list_to_atom(M))), St};
command("purge", [M], St) ->
    R = code:purge(list_to_atom(M)),
    %% Erlang answers only DidKill; the shell also counts whom: the processes that died.
    {Down, St1} = sweep(St),
    Killed = length([x || {_, "killed"} <- Down]),
    {[{result, R}, {killed, Killed}], St1#{down => Down}};
command("soft_purge", [M], St) ->
    {result(code:soft_purge(list_to_atom(M))), St};
command("check_old_code", [M], St) ->
    {result(erlang:check_old_code(list_to_atom(M))), St};
command("is_sticky", [M], St) ->
    {result(code:is_sticky(list_to_atom(M))), St};
command("is_loaded", [M], St) ->
    {result(case code:is_loaded(list_to_atom(M)) of
                {file, F} when is_list(F) -> {s, rel(F, St)};
                {file, A} -> {s, atom_to_list(A)};
                false -> false
            end), St};
command("which", [M], St) ->
    {result(case code:which(list_to_atom(M)) of
                F when is_list(F) -> {s, rel(F, St)};
                A -> {s, atom_to_list(A)}
            end), St};
command("module_status", [M], St) ->
    {result({s, atom_to_list(code:module_status(list_to_atom(M)))}), St};
command("state", [M0], St) ->
    M = list_to_atom(M0),
    Current = case erlang:module_loaded(M) of
                  false -> null;
                  true ->
                      File = case code:is_loaded(M) of
                                 {file, F} when is_list(F) -> {s, rel(F, St)};
                                 _ -> null
                             end,
                      Md5 = erlang:get_module_info(M, md5),
                      Vsn = proplists:get_value(vsn, erlang:get_module_info(M, attributes)),
                      {o, [{file, File}, {md5, {s, hex(Md5)}}, {vsn, vsn_text(Vsn)}]}
              end,
    {result({o, [{current, Current}, {has_old, erlang:check_old_code(M)}]}), St};
command("stick_dir", [Dir], St) ->
    {result({s, atom_to_list(code:stick_dir(Dir))}), St};
command("unstick_dir", [Dir], St) ->
    {result({s, atom_to_list(code:unstick_dir(Dir))}), St};
command("call", [M, F, A], St) ->
    Args = lists:duplicate(list_to_integer(A), x),
    R = try apply(list_to_atom(M), list_to_atom(F), Args) of
            _ -> "ok"
        catch error:undef -> "undef"
        end,
    {result({s, R}), St};
command("spawn", [Name, M], #{procs := Procs} = St) ->
    case maps:is_key(Name, Procs) of
        true -> line_error("process name in use: ~s", [Name]);
        false -> ok
    end,
    Parent = self(),
    {Pid, Ref} = spawn_monitor(fun() -> park(list_to_atom(M), Parent) end),
    P = #{pid => Pid, ref => Ref, module => list_to_atom(M), alive => true},
    St1 = St#{procs => Procs#{Name => P}},
    receive
        {started, Pid, V} -> {result(vsn_text(V)), St1};
        {'DOWN', Ref, process, Pid, R} -> {result({s, "undef"}), ended(Name, reason(R), St1)}
    end;
command("switch", [Name], St) ->
    case proc(Name, St) of
        #{alive := false} -> {result({s, "dead"}), St};
        #{pid := Pid, ref := Ref} ->
            Pid ! {switch, self()},
            receive
                {switched, Pid, V} -> {result(vsn_text(V)), St};
                {'DOWN', Ref, process, Pid, R} -> {result({s, "undef"}), ended(Name, reason(R), St)}
            end
    end;
command("ping", [Name], St) ->
    case proc(Name, St) of
        #{alive := false} -> {result({s, "dead"}), St};
        #{pid := Pid} ->
            Pid ! {ping, self()},
            receive {pong, Pid, V} -> {result(vsn_text(V)), St} end
    end;
command("stop", [Name], St) ->
    case proc(Name, St) of
        #{alive := false} -> {result({s, "dead"}), St};
        #{pid := Pid} = P ->
            Pid ! stop,
            {result({s, "ok"}), ended(Name, wait_down(P), St)}
    end;
command("alive", [Name], St) ->
    #{alive := Alive} = proc(Name, St),
    {result(Alive), St};
command("uses_old_code", [Name, M], St) ->
    case proc(Name, St) of
        #{alive := false} -> {result({s, "dead"}), St};
        #{pid := Pid} -> {result(erlang:check_process_code(Pid, list_to_atom(M))), St}
    end;
command(Op, _, _) ->
    line_error("unknown command or arguments: ~s", [Op]).

%% A process in M's current instance, as `codestore shell`'s `spawn P M` makes one.
%%
%% OTP 25 counts a process as running a module's code only through its program counter and
%% the return addresses on its stack (erlang:check_process_code/2: a fun of M held by the
%% process does not count, and erlang:hibernate/3 leaves no frame; both checked with erl).
%% So a real process can wait in M's code only where M's own code waits, or calls out to
%% something that waits. The entry is an external call (M:module_info/1, which every
%% compiled module exports): it loads M on demand in interactive mode and fails with undef
%% when M has no code, the shell's one failure. Then:
%%  - a module of tests/fixtures/src/loader/ exports start/1, its own receive loop;
%%  - any other module needs a clause of park_call/2 naming a function of M that calls a
%%    fun of ours, which waits there (serve/1): the process has a frame in M's instance
%%    all along, so it lingers in old code, is killed by a purge, and a `switch` (a throw
%%    out of M's frame, then a fresh external call) puts it in M's current instance or
%%    ends it with undef when M has no code. A module with no clause ends the process
%%    with {no_way_into, M}, which the differential test reports as a mismatch.
park(M, Parent) ->
    Vsn = proplists:get_value(vsn, M:module_info(attributes)),
    case erlang:function_exported(M, start, 1) of
        true -> M:start(Parent);
        false -> park(M, Vsn, fun(V) -> Parent ! {started, self(), V} end)
    end.

park(M, Vsn, Tell) ->
    Wait = fun() -> Tell(Vsn), serve(Vsn) end,
    try park_call(M, Wait) of
        _ -> exit({returned, M})
    catch
        throw:{switch, From} ->
            Vsn1 = proplists:get_value(vsn, M:module_info(attributes)),
            park(M, Vsn1, fun(V) -> From ! {switched, self(), V} end)
    end.

%% What the fixtures' loop does, from inside M's frame: the vsn is the one of the
%% instance the process entered.
serve(Vsn) ->
    receive
        {ping, From} -> From ! {pong, self(), Vsn}, serve(Vsn);
        {switch, From} -> throw({switch, From});
        stop -> exit(normal)
    end.

%% A call into M's code that calls Wait before it returns (not as a tail call).
%% counter (tests/fixtures/src/loader_foreign/): a gen_server callback that runs a fun.
park_call(counter, Wait) ->
    counter:handle_call({apply, fun(_) -> Wait() end}, self(), 0);
%% misc_supp (sasl, in every OTP install), as OTP ships it: multi_map/2 applies the fun
%% inside a list it is building.
park_call(misc_supp, Wait) ->
    misc_supp:multi_map(fun(_) -> Wait() end, [[x]]);
park_call(M, _) ->
    exit({no_way_into, M}).

hex(Bin) -> lists:flatten([io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

%% JSON: {o, [{Key, V}]}, {l, [V]}, {s, String}, integers, true, false, null.
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(N) when is_integer(N) -> integer_to_list(N);
json({s, S}) -> [$", [esc(C) || C <- S], $"];
json({l, L}) -> [$[, lists:join($,, [json(V) || V <- L]), $]];
json({o, Fields}) ->
    [${, lists:join($,, [[json({s, atom_to_list(K)}), $:, json(V)] || {K, V} <- Fields]), $}].

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc($\n) -> "\\n";
esc(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> C.
