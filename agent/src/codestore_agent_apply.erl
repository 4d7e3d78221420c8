%% An upgrade plan applied on a live node, in release_handler's order (docs/plan-apply.md).
%%
%% apply(PlanTerm, Opts) -> {ok, Report} | {error, Report}
%%   PlanTerm: the map store/plan_term.cpp writes (include/codestore/plan_term.h).
%%   Opts (a map, or a proplist): deadline (ms, default 30000), brutal (kill processes that
%%   linger in old code, default false), force (apply a plan that needs a restart),
%%   probe ({M, F, A} returning ok or true; default: every suspended process is alive and
%%   answers sys:get_state), root (where lib/ is: default code:root_dir()), revert (apply the
%%   reverse when the plan fails after the switch, default true), notify (a pid told
%%   {codestore_agent_apply, Report} by the guardian when the caller died meanwhile).
%%
%% The order (release_handler_1.erl # eval_script/5, eval/2; systools_rc for the downgrade):
%%   1. check: the node runs the plan's FROM code (MD5s), the plan needs no restart unless forced;
%%   2. prepare the new code with code:prepare_loading/1 (and the old code for a revert);
%%      -on_load modules are loaded one by one after the switch, as OTP requires;
%%   3. find the processes whose callback module changes (supervision trees' child specs, as
%%      release_handler_1:get_supervised_procs/0, and every process's proc_lib $initial_call);
%%   4. soft-purge the previous old code (refused: report who blocks, change nothing);
%%   5. a guardian process runs the critical section and resumes whatever it suspended, even
%%      when the caller dies: suspend (with the deadline), purge again, for a downgrade
%%      code_change({down, Vsn}) in the newer code, the switch (code:finish_loading/1), for an
%%      upgrade code_change(OldVsn), resume;
%%   6. code paths (code:replace_path/2), the post-purge (soft; old code kept while a process
%%      lingers in it), the health probe; a failure after the switch applies the reverse.
-module(codestore_agent_apply).

-ifndef(VSN).
-define(VSN, "0").
-endif.
-vsn(?VSN).

-export([apply/2, reverse/1, vocabulary/0]).
-compile({no_auto_import, [apply/2]}).

-define(STEP_TIMEOUT, 5000).

%% --- The entry point -----------------------------------------------------------------------

apply(Plan, Opts0) when is_map(Plan) ->
    T0 = erlang:monotonic_time(millisecond),
    O = opts(Opts0),
    Deadline = T0 + maps:get(deadline, O),
    R0 = #{from => maps:get(from, Plan, undefined), to => maps:get(to, Plan, undefined),
           direction => maps:get(direction, Plan, undefined),
           suspended => [], blocking => [], killed => [], lingering => [], code_change => [],
           modules => [], warnings => maps:get(warnings, Plan, [])},
    Result = try run(Plan, O, Deadline, R0)
             catch throw:{stop, Outcome, Why, R} -> {error, R#{outcome => Outcome, reason => Why}}
             end,
    timed(Result, T0);
apply(Plan, _Opts) ->
    {error, #{outcome => refused, reason => {bad_plan, not_a_map, Plan}, time_ms => 0}}.

timed({Tag, R}, T0) ->
    {Tag, R#{time_ms => erlang:monotonic_time(millisecond) - T0}}.

opts(L) when is_list(L) -> opts(maps:from_list(proplists:unfold(L)));
opts(M) when is_map(M) ->
    maps:merge(#{deadline => 30000, brutal => false, force => false, probe => undefined,
                 root => code:root_dir(), revert => true, notify => undefined}, M).

%% The plan the other way: from its TO back to its FROM, modules in the reverse order.
reverse(Plan = #{modules := Mods}) ->
    Flip = fun(up) -> down; (down) -> up end,
    Plan#{from => maps:get(to, Plan), to => maps:get(from, Plan),
          direction => Flip(maps:get(direction, Plan)),
          apps => [{A, To, From} || {A, From, To} <- maps:get(apps, Plan, [])],
          modules => [reverse_module(M) || M <- lists:reverse(Mods)]}.

reverse_module(M) ->
    Change = case maps:get(change, M) of added -> removed; removed -> added; C -> C end,
    Instr = case maps:get(instruction, M) of
                add_module -> delete_module;
                delete_module -> add_module;
                I -> I
            end,
    M#{change => Change, instruction => Instr,
       from_md5 => maps:get(to_md5, M), to_md5 => maps:get(from_md5, M),
       from_file => maps:get(to_file, M), to_file => maps:get(from_file, M),
       from_code => maps:get(to_code, M), to_code => maps:get(from_code, M),
       old_vsn => reverse_vsn(maps:get(old_vsn, M)), extra => reverse_extra(maps:get(extra, M))}.

reverse_vsn(undefined) -> undefined;
reverse_vsn({down, V}) -> V;
reverse_vsn(V) -> {down, V}.

reverse_extra({A, B}) -> {B, A};
reverse_extra(E) -> E.

%% Names from the store (modules, applications) come as binaries, so that the term decodes
%% with binary_to_term(B, [safe]) on a node that has never seen a new module's name; they
%% become atoms here, as many as the plan has modules. Atoms are accepted as well.
normalize(Plan) ->
    Mods = [M#{module => to_atom(maps:get(module, M)), app => to_atom(maps:get(app, M, undefined)),
               dep_mods => [to_atom(D) || D <- maps:get(dep_mods, M, [])]}
            || M <- maps:get(modules, Plan, [])],
    Plan#{modules => Mods, apps => [{to_atom(A), F, T} || {A, F, T} <- maps:get(apps, Plan, [])]}.

to_atom(A) when is_atom(A) -> A;
to_atom(B) when is_binary(B) -> binary_to_atom(B, utf8).

%% Every atom a plan term holds besides {M, F, A} of a probe and atoms in a module's own -vsn:
%% they exist once this module is loaded, so binary_to_term(B, [safe]) accepts a plan term.
vocabulary() ->
    [format, from, to, direction, purge, apps, needs_restart, warnings, probe, modules,
     module, change, instruction, update_kind, behaviour, app, from_md5, to_md5, from_file, to_file,
     from_code, to_code, old_vsn, extra, dep_mods, on_load, vsn_trap, kind, subject, message,
     up, down, soft_purge, brutal_purge, added, removed, changed,
     load_module, update, add_module, delete_module, none, advanced, soft, supervisor,
     nif, config, erts, default, undefined, true, false].

%% --- Before the critical section: nothing changes -------------------------------------------

run(Plan0, O, Deadline, R0) ->
    case maps:get(format, Plan0, undefined) of
        1 -> ok;
        F -> throw({stop, refused, {bad_plan, {format, F}}, R0})
    end,
    Plan = try normalize(Plan0)
           catch _:Bad -> throw({stop, refused, {bad_plan, Bad}, R0})
           end,
    Mods = maps:get(modules, Plan),
    case {maps:get(needs_restart, Plan, []), maps:get(force, O)} of
        {[_ | _] = Why, false} -> throw({stop, refused, {needs_restart, Why}, R0});
        _ -> ok
    end,
    case where_is_node(Mods) of
        at_to -> {ok, R0#{outcome => already, modules => module_states(Mods)}};
        at_from -> run_from(Plan, Mods, O, Deadline, R0);
        {other, Which} -> throw({stop, refused, {not_at_from, Which}, R0})
    end.

run_from(Plan, Mods, O, Deadline, R0) ->
    Root = maps:get(root, O),
    Load = [M || M = #{to_code := C} <- Mods, is_binary(C)],
    {OnLoad, Normal} = lists:partition(fun(#{on_load := OL}) -> OL end, Load),
    Prepared = prepare([{Mod, file(Root, M, to_file), C} || M = #{module := Mod, to_code := C} <- Normal],
                       prepare_new, R0),
    [case erlang:prepare_loading(Mod, C) of
         {error, Why} -> throw({stop, refused, {prepare_new, [{Mod, Why}]}, R0});
         _ -> ok
     end || #{module := Mod, to_code := C} <- OnLoad],
    %% The code the node runs now, prepared for a revert inside the critical section.
    Back = [M || M = #{from_code := C, on_load := false} <- Mods, is_binary(C)],
    PreparedBack = prepare([{Mod, file(Root, M, from_file), C} || M = #{module := Mod, from_code := C} <- Back],
                           prepare_old, R0),
    Touched = [Mod || #{module := Mod} <- Mods],
    Brutal = maps:get(brutal, O),
    %% The previous old code: freed now when no process runs it (a soft purge frees nothing
    %% that a process needs), else the plan is refused, unless brutal.
    Blocking = [{Mod, blockers(Mod)} || Mod <- Touched, not code:soft_purge(Mod)],
    case {Blocking, Brutal} of
        {[], _} -> ok;
        {_, true} -> ok;
        {_, false} ->
            throw({stop, refused, {old_processes, [Mod || {Mod, _} <- Blocking]},
                   R0#{blocking => lists:append([B || {_, B} <- Blocking])}})
    end,
    Updates = [M || M = #{instruction := update, update_kind := K} <- Mods, K =/= none],
    Procs = find_procs([Mod || #{module := Mod} <- Updates], Deadline),
    Changes = [{Pid, Mod, maps:get(old_vsn, M), maps:get(extra, M)}
               || M = #{module := Mod, update_kind := K} <- Updates, K =:= advanced orelse K =:= supervisor,
                  {Pid, Mod2} <- Procs, Mod2 =:= Mod],
    Removes = [Mod || #{module := Mod, change := removed} <- Mods],
    Added = [Mod || #{module := Mod, change := added} <- Mods],
    Down = maps:get(direction, Plan) =:= down,
    Section = #{applier => self(), deadline => Deadline, brutal => Brutal,
                suspend => lists:usort([P || {P, _} <- Procs]),
                purge => Touched,
                down_change => case Down of true -> Changes; false -> [] end,
                up_change => case Down of true -> []; false -> Changes end,
                prepared => Prepared, removes => Removes,
                on_load => [{Mod, file(Root, M, to_file), C} || M = #{module := Mod, to_code := C} <- OnLoad],
                revert => maps:get(revert, O), prepared_back => PreparedBack, added => Added,
                notify => maps:get(notify, O), report => R0},
    G = guardian(Section),
    after_section(G, Plan, Mods, O, R0).

prepare([], _Stage, _R) -> none;
prepare(List, Stage, R) ->
    case code:prepare_loading(List) of
        {ok, P} -> P;
        {error, Errors} -> throw({stop, refused, {Stage, Errors}, R})
    end.

file(Root, M = #{module := Mod}, Key) ->
    case maps:get(Key, M) of
        F when is_list(F) -> filename:join(Root, F);
        _ ->
            case code:which(Mod) of
                W when is_list(W) -> W;
                _ -> atom_to_list(Mod) ++ ".beam"
            end
    end.

%% The node's code, by MD5: at the plan's FROM, at its TO, or elsewhere. A module that is not
%% loaded can go either way (interactive mode loads it on its first call, from the path).
where_is_node(Mods) ->
    States = [{M, current_md5(M)} || M <- Mods],
    AtTo = [ok || {#{to_md5 := To}, Cur} <- States, Cur =:= To orelse (Cur =:= not_loaded andalso To =:= undefined)],
    AtFrom = [ok || {#{from_md5 := From}, Cur} <- States, Cur =:= From orelse Cur =:= not_loaded],
    if
        length(AtTo) =:= length(Mods) -> at_to;
        length(AtFrom) =:= length(Mods) -> at_from;
        true ->
            {other, [{Mod, md5_hex(Cur)} || {#{module := Mod, from_md5 := F}, Cur} <- States,
                                            Cur =/= F, Cur =/= not_loaded]}
    end.

current_md5(#{module := Mod}) ->
    case erlang:module_loaded(Mod) of
        true -> erlang:get_module_info(Mod, md5);
        false -> not_loaded
    end.

module_states(Mods) ->
    [#{module => Mod, md5 => md5_hex(current_md5(M)), file => code:which(Mod)} || M = #{module := Mod} <- Mods].

md5_hex(B) when is_binary(B) -> list_to_binary([io_lib:format("~2.16.0b", [X]) || <<X>> <= B]);
md5_hex(A) -> A.

%% --- Processes ------------------------------------------------------------------------------

%% [{Pid, Module}]: the processes whose callback module is one of Mods.
find_procs([], _Deadline) -> [];
find_procs(Mods, Deadline) ->
    Self = self(),
    Supervised = [{P, M} || {P, Ms} <- supervised_procs(Deadline), M <- Ms, lists:member(M, Mods)],
    Started = [{P, M} || P <- erlang:processes(), P =/= Self, M <- [callback_module(P)],
                         lists:member(M, Mods)],
    lists:usort(Supervised ++ Started).

%% proc_lib's $initial_call: {Mod, init, 1} for a gen_server, gen_statem, gen_event started
%% with Mod; {supervisor, Mod, 1} for a supervisor.
callback_module(P) ->
    case erlang:process_info(P, dictionary) of
        {dictionary, D} ->
            case lists:keyfind('$initial_call', 1, D) of
                {_, {supervisor, Mod, _}} -> Mod;
                {_, {supervisor_bridge, Mod, _}} -> Mod;
                {_, {Mod, _, _}} -> Mod;
                _ -> undefined
            end;
        _ -> undefined
    end.

%% release_handler_1:get_supervised_procs/0's walk: every application's top supervisor and
%% the modules of each child spec ([{Pid, Mods}]), with timeouts instead of infinity.
supervised_procs(Deadline) ->
    lists:append([app_procs(App, Deadline) || {App, _, _} <- application:which_applications()]).

app_procs(App, Deadline) ->
    try application_controller:get_master(App) of
        Master when is_pid(Master) ->
            {Root, _AppMod} = application_master:get_child(Master),
            case is_pid(Root) of
                true -> [{Root, [callback_module(Root)]} | children(Root, Deadline)];
                false -> []
            end;
        _ -> []
    catch _:_ -> []
    end.

children(Sup, Deadline) ->
    T = step_timeout(Deadline),
    case catch gen_server:call(Sup, which_children, T) of
        L when is_list(L) ->
            lists:append([child(C, Deadline) || C <- L]);
        _ -> []
    end.

child({_Name, Pid, worker, dynamic}, Deadline) when is_pid(Pid) ->
    case catch gen:call(Pid, self(), get_modules, step_timeout(Deadline)) of
        {ok, Mods} when is_list(Mods) -> [{Pid, Mods}];
        _ -> []
    end;
child({_Name, Pid, worker, Mods}, _Deadline) when is_pid(Pid), is_list(Mods) -> [{Pid, Mods}];
child({_Name, Pid, supervisor, Mods}, Deadline) when is_pid(Pid) ->
    [{Pid, case is_list(Mods) of true -> Mods; false -> [] end} | children(Pid, Deadline)];
child(_, _) -> [].

step_timeout(Deadline) ->
    max(1, min(?STEP_TIMEOUT, Deadline - erlang:monotonic_time(millisecond))).

%% Who runs the old code of Mod: pid, registered name, current function.
blockers(Mod) ->
    [who(P) || P <- erlang:processes(), P =/= self(), erlang:check_process_code(P, Mod) =:= true].

who(P) ->
    case erlang:process_info(P, [registered_name, current_function]) of
        [{registered_name, N}, {current_function, F}] ->
            #{pid => P, registered_name => case N of [] -> undefined; _ -> N end, current_function => F};
        _ -> #{pid => P, registered_name => undefined, current_function => undefined}
    end.

%% --- The critical section, in a guardian ----------------------------------------------------

%% The guardian runs the section and resumes what it suspended whatever happens; it monitors
%% the caller: if the caller dies before anything changed, the guardian stops and resumes;
%% once the state changed (a code_change ran, or the switch), it completes the section, so
%% no process is left with state of one version under code of the other. The caller monitors
%% the guardian: if the guardian dies, the caller resumes what the guardian was to suspend.
guardian(Section) ->
    Caller = self(),
    Tag = make_ref(),
    {Pid, Mon} = spawn_monitor(fun() -> guard(Section, Caller, Tag) end),
    receive
        {Tag, Result} ->
            erlang:demonitor(Mon, [flush]),
            Result;
        {'DOWN', Mon, process, Pid, Why} ->
            [catch sys:resume(P, 1000) || P <- maps:get(suspend, Section)],
            #{outcome => failed, reason => {guardian_died, Why}, switched => unknown,
              suspended => maps:get(suspend, Section), killed => [], blocking => [], code_change => [],
              lingering => []}
    end.

guard(Section = #{applier := Caller}, Caller, Tag) ->
    Mon = erlang:monitor(process, Caller),
    S0 = #{mon => Mon, caller_died => false, changed => false, switched => false,
           suspended => [], killed => [], blocking => [], code_change => [], lingering => [],
           outcome => applied},
    S = try section(Section, S0)
        catch
            throw:{abort, Outcome, Why, S1} -> S1#{outcome => Outcome, reason => Why};
            Class:Reason ->
                %% What the section did, from what it noted as it went.
                S0#{outcome => failed, reason => {crash, Class, Reason},
                    suspended => get_list('$suspended'), switched => get('$switched') =:= true}
        end,
    Resumed = [begin catch sys:resume(P, ?STEP_TIMEOUT), P end || P <- maps:get(suspended, S)],
    Result = maps:without([mon], S#{suspended => Resumed}),
    case caller_alive(S) of
        true -> Caller ! {Tag, Result};
        false ->
            case maps:get(notify, Section) of
                N when is_pid(N) ->
                    N ! {codestore_agent_apply, (maps:get(report, Section))#{outcome => maps:get(outcome, Result),
                                                                            guardian => Result,
                                                                            reason => caller_died}};
                _ -> ok
            end
    end.

get_list(Key) ->
    case get(Key) of
        undefined -> [];
        L -> L
    end.

caller_alive(#{caller_died := true}) -> false;
caller_alive(#{mon := Mon}) ->
    receive {'DOWN', Mon, _, _, _} -> false after 0 -> true end.

%% Before anything changed: stop when the caller died or the deadline passed.
check(S = #{changed := true}, _Section) -> S;
check(S = #{mon := Mon}, #{deadline := D}) ->
    receive
        {'DOWN', Mon, _, _, _} -> throw({abort, aborted, caller_died, S#{caller_died => true}})
    after 0 ->
        case erlang:monotonic_time(millisecond) > D of
            true -> throw({abort, aborted, deadline, S});
            false -> S
        end
    end.

section(Sec, S0) ->
    S1 = suspend(maps:get(suspend, Sec), S0, Sec),
    S2 = purge(maps:get(purge, Sec), maps:get(brutal, Sec), check(S1, Sec)),
    S3 = change(maps:get(down_change, Sec), check(S2, Sec), Sec, before_switch),
    S4 = switch(check(S3, Sec), Sec),
    change(maps:get(up_change, Sec), S4, Sec, after_switch).

suspend([], S, _Sec) -> S;
suspend([P | T], S, Sec = #{deadline := D}) ->
    S1 = check(S, Sec),
    case catch sys:suspend(P, max(1, D - erlang:monotonic_time(millisecond))) of
        ok ->
            put('$suspended', [P | get_list('$suspended')]),
            suspend(T, S1#{suspended => [P | maps:get(suspended, S1)]}, Sec);
        {'EXIT', {noproc, _}} -> suspend(T, S1, Sec);
        {'EXIT', Why} ->
            %% A process that answers late gets the resume after the suspend (release_handler_1:suspend/3).
            catch sys:resume(P, 100),
            throw({abort, aborted, {suspend_failed, who(P), Why}, S1})
    end.

purge(Mods, Brutal, S) ->
    lists:foldl(
      fun(Mod, Acc) ->
              case code:soft_purge(Mod) of
                  true -> Acc;
                  false when Brutal ->
                      B = blockers(Mod),
                      _ = code:purge(Mod),
                      Acc#{killed => maps:get(killed, Acc) ++ B};
                  false ->
                      throw({abort, refused, {old_processes, [Mod]}, Acc#{blocking => blockers(Mod)}})
              end
      end, S, Mods).

%% code_change in every suspended process of each module; a failure undoes the ones done.
change(Changes, S, Sec, When) ->
    change(Changes, [], S, Sec, When).

change([], _Done, S, _Sec, _When) -> S;
change([{P, Mod, Vsn, Extra} | T], Done, S, Sec, When) ->
    case lists:member(P, maps:get(suspended, S)) of
        false -> change(T, Done, S, Sec, When);
        true ->
            R = (catch sys:change_code(P, Mod, Vsn, Extra, ?STEP_TIMEOUT)),
            Entry = #{pid => P, module => Mod, old_vsn => Vsn, extra => Extra, result => R},
            S1 = S#{code_change => maps:get(code_change, S) ++ [Entry]},
            case R of
                ok -> change(T, [{P, Mod, Vsn, Extra} | Done], S1#{changed => true}, Sec, When);
                _ -> undo_change(Done, S1, Sec, When, {code_change_failed, P, Mod, R})
            end
    end.

%% Undo the code_changes done (in the code that ran them, the reverse way): before the switch
%% (a downgrade) that is all; after it (an upgrade), the old code goes back too.
undo_change(Done, S, _Sec, before_switch, Why) ->
    S1 = undo(Done, S),
    throw({abort, aborted, Why, S1});
undo_change(Done, S, Sec, after_switch, Why) ->
    case maps:get(revert, Sec) of
        false -> throw({abort, failed, Why, S});
        true -> revert_in_section(Done, S, Sec, Why)
    end.

undo(Done, S) ->
    lists:foldl(fun({P, Mod, Vsn, Extra}, Acc) ->
                        R = (catch sys:change_code(P, Mod, reverse_vsn(Vsn), reverse_extra(Extra), ?STEP_TIMEOUT)),
                        Acc#{code_change => maps:get(code_change, Acc)
                                 ++ [#{pid => P, module => Mod, old_vsn => reverse_vsn(Vsn),
                                       extra => reverse_extra(Extra), result => R}]}
                end, S, Done).

switch(S, Sec) ->
    case maps:get(prepared, Sec) of
        none -> ok;
        Prep ->
            case code:finish_loading(Prep) of
                ok -> ok;
                {error, Errors} ->
                    S1 = undo(down_done(S), S),
                    throw({abort, aborted, {finish_loading, Errors}, S1})
            end
    end,
    put('$switched', true),
    [code:delete(M) || M <- maps:get(removes, Sec)],
    OnLoad = [{M, code:load_binary(M, F, B)} || {M, F, B} <- maps:get(on_load, Sec)],
    S#{changed => true, switched => true, on_load => OnLoad}.

down_done(#{code_change := CC}) ->
    [{P, M, V, E} || #{pid := P, module := M, old_vsn := V, extra := E, result := ok} <- CC].

%% After the switch a code_change failed: the done ones are changed back in the new code,
%% then the old code is loaded again; when a process lingers in the old code (now the
%% VM's old slot) and brutal was not given, nothing is undone and the report says who.
revert_in_section(Done, S, Sec, Why) ->
    Mods = maps:get(purge, Sec),
    Blocking = [{M, blockers(M)} || M <- Mods, not code:soft_purge(M)],
    case {Blocking, maps:get(brutal, Sec)} of
        {[_ | _], false} ->
            throw({abort, failed, {Why, {revert_blocked, [M || {M, _} <- Blocking], use_brutal}},
                   S#{blocking => lists:append([B || {_, B} <- Blocking])}});
        _ ->
            Killed = lists:append([B || {_, B} <- Blocking]),
            [code:purge(M) || {M, _} <- Blocking],
            S1 = undo(Done, S#{killed => maps:get(killed, S) ++ Killed}),
            [begin code:purge(M), code:delete(M) end || M <- maps:get(added, Sec)],
            Back = case maps:get(prepared_back, Sec) of
                       none -> ok;
                       P -> code:finish_loading(P)
                   end,
            throw({abort, reverted, {Why, {reverted, Back}}, S1})
    end.

%% --- After the critical section --------------------------------------------------------------

after_section(G = #{switched := true, outcome := applied}, Plan, Mods, O, R0) ->
    R1 = merge(R0, G),
    Paths = replace_paths(maps:get(apps, Plan, []), maps:get(root, O)),
    AppData = change_app_data(maps:get(apps, Plan, []), maps:get(root, O)),
    Lingering = lists:append([blockers(M) || #{module := M} <- Mods, not code:soft_purge(M)]),
    R2 = R1#{paths => Paths, app_data => AppData, lingering => Lingering,
             on_load => maps:get(on_load, G, [])},
    case probe(O, Plan, maps:get(suspended, G)) of
        ok ->
            R3 = case {Lingering, maps:get(brutal, O)} of
                     {[_ | _], true} ->
                         [code:purge(M) || #{module := M} <- Mods],
                         R2#{killed => maps:get(killed, R2) ++ Lingering, lingering => []};
                     _ -> R2
                 end,
            {ok, R3#{outcome => applied, probe => ok, modules => module_states(Mods)}};
        {failed, Why} ->
            R3 = R2#{probe => {failed, Why}},
            case maps:get(revert, O) of
                false -> {error, R3#{outcome => failed, reason => {probe, Why}, modules => module_states(Mods)}};
                true ->
                    {Tag, Rev} = ?MODULE:apply(reverse(Plan), O#{revert => false, force => true,
                                                                 probe => default_probe}),
                    Outcome = case Tag of ok -> reverted; error -> failed end,
                    {error, R3#{outcome => Outcome, reason => {probe, Why}, reverse => Rev,
                                modules => module_states(Mods)}}
            end
    end;
after_section(G, _Plan, Mods, _O, R0) ->
    R = merge(R0, G),
    {error, R#{modules => module_states(Mods)}}.

merge(R0, G) ->
    maps:merge(R0, maps:with([outcome, reason, suspended, killed, blocking, code_change, switched], G)).

replace_paths(Apps, Root) ->
    [{App, Dir, code:replace_path(App, Dir)}
     || {App, From, To} <- Apps, is_list(To), From =/= To,
        Dir <- [filename:join([Root, "lib", atom_to_list(App) ++ "-" ++ To, "ebin"])],
        is_list(code:lib_dir(App))].

%% The application controller's view of each loaded application whose vsn moved, as
%% release_handler's change_appl_data/3 changes it: the new .app's keys (vsn, description,
%% modules, ...), so that application:which_applications/0 and get_key/2 name the version that
%% runs. The env stays what the node has (a changed env needs a restart, and the plan says so):
%% every loaded application's env is passed as the configuration, which the controller keeps
%% for applications loaded later. The .app is read where the new code path points, like the
%% code path itself (code:replace_path/2).
change_app_data(Apps, Root) ->
    Loaded = [A || {A, _, _} <- application:loaded_applications()],
    Moved = [{App, To} || {App, From, To} <- Apps, is_list(To), From =/= To, lists:member(App, Loaded)],
    case Moved of
        [] -> [];
        _ ->
            Config = [{A, application:get_all_env(A)} || A <- Loaded],
            [{App, case app_spec(App, To, Root) of
                       {ok, Spec} ->
                           catch application_controller:change_application_data([Spec], Config);
                       Error -> Error
                   end} || {App, To} <- Moved]
    end.

app_spec(App, Vsn, Root) ->
    File = filename:join([Root, "lib", atom_to_list(App) ++ "-" ++ Vsn, "ebin", atom_to_list(App) ++ ".app"]),
    try
        {ok, Bin, _} = erl_prim_loader:get_file(File),
        {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Bin)),
        {ok, {application, App, Props} = Spec} = erl_parse:parse_term(Tokens),
        Vsn = proplists:get_value(vsn, Props),
        {ok, Spec}
    catch _:Why -> {error, {File, Why}}
    end.

probe(O, Plan, Suspended) ->
    Probe = case maps:get(probe, O) of
                undefined -> maps:get(probe, Plan, default);
                P -> P
            end,
    case Probe of
        {M, F, A} ->
            case catch erlang:apply(M, F, A) of
                ok -> ok;
                true -> ok;
                Other -> {failed, {M, F, A, Other}}
            end;
        _ ->
            Bad = [{P, R} || P <- Suspended,
                             R <- [case is_process_alive(P) of
                                       false -> dead;
                                       true ->
                                           case catch sys:get_state(P, ?STEP_TIMEOUT) of
                                               {'EXIT', Why} -> {no_answer, Why};
                                               _ -> ok
                                           end
                                   end],
                             R =/= ok],
            case Bad of
                [] -> ok;
                _ -> {failed, Bad}
            end
    end.
