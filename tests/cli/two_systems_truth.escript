#!/usr/bin/env escript
%% -*- erlang -*-
%% Erlang's own answers for the two-systems test (tests/cli/two_systems_test.cpp).
%%
%%   two_systems_truth.escript closure APPDIR LIBDIR
%%       the applications APPDIR's application uses, found in LIBDIR/*/ebin/*.app: the .app
%%       files' `applications` and `included_applications`, transitively, and the
%%       applications whose modules their code calls (each beam's imports, beam_lib:chunks/2),
%%       which a .app does not always name (Debian's p1_acme calls base64url). erts is left
%%       out: its modules are preloaded in the emulator, which a release records, not carries.
%%   two_systems_truth.escript md5 APPDIR...
%%       the given applications.
%%
%% Each application is printed as `app NAME VSN DIR` (NAME and VSN the .app's), then one line
%% `module NAME MODULE MD5` per ebin/*.beam, MD5 being beam_lib:md5/1's in hex.
-mode(compile).

main(["closure", Root, LibDir]) ->
    Known = maps:from_list([{App, Dir} || Dir <- [Root | filelib:wildcard(LibDir ++ "/*")],
                                          {App, _} <- [app_of(Dir)], App =/= none]),
    Owner = maps:from_list([{M, App} || {App, Dir} <- maps:to_list(Known), M <- beams(Dir)]),
    {Top, _} = app_of(Root),
    Used = walk([Top], Known, Owner, #{}),
    lists:foreach(fun(App) -> print(maps:get(App, Known)) end, lists:sort(maps:keys(Used)));
main(["md5" | Dirs]) ->
    lists:foreach(fun print/1, Dirs).

app_of(Dir) ->
    case filelib:wildcard(filename:join([Dir, "ebin", "*.app"])) of
        [F | _] ->
            {ok, [{application, A, P}]} = file:consult(F),
            {A, P};
        [] ->
            {none, []}
    end.

beams(Dir) ->
    [list_to_atom(filename:basename(B, ".beam")) || B <- filelib:wildcard(filename:join([Dir, "ebin", "*.beam"]))].

walk([], _, _, Acc) -> Acc;
walk([erts | T], K, O, Acc) -> walk(T, K, O, Acc);
walk([A | T], K, O, Acc) when is_map_key(A, Acc) -> walk(T, K, O, Acc);
walk([A | T], K, O, Acc) ->
    case maps:find(A, K) of
        error ->
            walk(T, K, O, Acc);
        {ok, Dir} ->
            {_, P} = app_of(Dir),
            Own = beams(Dir),
            %% A call to a module the application carries itself is its own (ejabberd carries
            %% an eldap module of its own, beside OTP's eldap application).
            Calls = lists:usort([maps:get(M, O) || B <- filelib:wildcard(filename:join([Dir, "ebin", "*.beam"])),
                                                   {ok, {_, [{imports, I}]}} <- [beam_lib:chunks(B, [imports])],
                                                   {M, _, _} <- I, is_map_key(M, O), not lists:member(M, Own)]),
            Next = proplists:get_value(applications, P, []) ++
                       proplists:get_value(included_applications, P, []) ++ Calls,
            walk(Next ++ T, K, O, Acc#{A => true})
    end.

print(Dir) ->
    {A, P} = app_of(Dir),
    io:format("app ~s ~s ~s~n", [A, proplists:get_value(vsn, P), Dir]),
    lists:foreach(fun(B) ->
                          {ok, {M, Md5}} = beam_lib:md5(B),
                          io:format("module ~s ~s ~s~n", [A, M, [io_lib:format("~2.16.0b", [X]) || <<X>> <= Md5]])
                  end,
                  filelib:wildcard(filename:join([Dir, "ebin", "*.beam"]))).
