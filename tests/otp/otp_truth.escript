#!/usr/bin/env escript
%% -*- erlang -*-
%% Erlang's reading of OTP's files for tests/otp, one line per file named in LISTFILE,
%% "hex(term_to_binary(X))" where X is:
%%   apps LISTFILE   {Name, Vsn, Modules, Registered, Applications, IncludedApplications}
%%                   of the .app file (file:consult/1, keys as application:get_key/2 names them)
%%   rels LISTFILE   {Name, Vsn, ErtsVsn, [App], [AppVsn]} of the .rel file
%%   boots LISTFILE  {Name, Vsn, [Dirs of each path], [Mods of each primLoad]} of
%%                   binary_to_term of the boot file
%%   systools LISTFILE  each line a directory D holding lib/x-1/ebin/x.app: writes D/x.rel
%%                   (kernel, stdlib, sasl, x "1") and answers the verdict of
%%                   systools:make_script with src_tests (which checks that the beams exist):
%%                   {ok, Warnings} | {duplicate_modules, [M]} | {module_not_found, [M]} | other
%%                   (Warnings without source_not_found: sources are not in question)
main(["systools", ListFile]) ->
    {ok, Bin} = file:read_file(ListFile),
    Dirs = [binary_to_list(F) || F <- binary:split(Bin, <<"\n">>, [global, trim_all])],
    lists:foreach(fun(D) -> io:format("~s~n", [hex(term_to_binary(systools_verdict(D)))]) end, Dirs);
main([Mode, ListFile]) ->
    {ok, Bin} = file:read_file(ListFile),
    Files = [binary_to_list(F) || F <- binary:split(Bin, <<"\n">>, [global, trim_all])],
    lists:foreach(fun(F) -> io:format("~s~n", [hex(term_to_binary(answer(Mode, F)))]) end, Files).

answer("apps", F) ->
    {ok, [{application, Name, Keys}]} = file:consult(F),
    Get = fun(K) -> proplists:get_value(K, Keys, []) end,
    {Name, Get(vsn), Get(modules), Get(registered), Get(applications), Get(included_applications)};
answer("rels", F) ->
    {ok, [{release, {Name, Vsn}, {erts, EVsn}, Apps}]} = file:consult(F),
    {Name, Vsn, EVsn, [element(1, A) || A <- Apps], [element(2, A) || A <- Apps]};
answer("boots", F) ->
    {ok, B} = file:read_file(F),
    {script, {Name, Vsn}, Instrs} = binary_to_term(B),
    {Name, Vsn, [P || {path, P} <- Instrs], [M || {primLoad, M} <- Instrs]}.

systools_verdict(Dir) ->
    Vsn = fun(A) -> _ = application:load(A), {ok, V} = application:get_key(A, vsn), V end,
    Rel = {release, {"x", "1"}, {erts, erlang:system_info(version)},
           [{kernel, Vsn(kernel)}, {stdlib, Vsn(stdlib)}, {sasl, Vsn(sasl)}, {x, "1"}]},
    ok = file:write_file(Dir ++ "/x.rel", io_lib:format("~p.~n", [Rel])),
    case systools:make_script(Dir ++ "/x", [{path, [Dir ++ "/lib/x-1/ebin"]}, src_tests, silent, {outdir, Dir}]) of
        {ok, _, Warnings} -> {ok, [W || W <- Warnings, not source_warning(W)]};
        {error, systools_make, {duplicate_modules, Dups}} ->
            {duplicate_modules, lists:usort([M || {{M, _, _}, _} <- Dups])};
        {error, systools_make, {modules, Errors}} ->
            {module_not_found, lists:usort([M || {error, {{module_not_found, _, M}, _}} <- Errors])};
        _ -> other
    end.

%% src_tests also looks for each module's .erl: not a question about the ebin.
source_warning({warning, {source_not_found, _}}) -> true;
source_warning(_) -> false.

hex(B) -> [io_lib:format("~2.16.0b", [X]) || <<X>> <= B].
