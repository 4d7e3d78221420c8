#!/usr/bin/env escript
%% -*- erlang -*-
%% Erlang's reading of OTP's files for tests/otp, one line per file named in LISTFILE,
%% "hex(term_to_binary(X))" where X is:
%%   apps LISTFILE   {Name, Vsn, Modules, Registered, Applications, IncludedApplications}
%%                   of the .app file (file:consult/1, keys as application:get_key/2 names them)
%%   rels LISTFILE   {Name, Vsn, ErtsVsn, [App], [AppVsn]} of the .rel file
%%   boots LISTFILE  {Name, Vsn, [Dirs of each path], [Mods of each primLoad]} of
%%                   binary_to_term of the boot file
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

hex(B) -> [io_lib:format("~2.16.0b", [X]) || <<X>> <= B].
