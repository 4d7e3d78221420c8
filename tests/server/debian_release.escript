#!/usr/bin/env escript
%% A release made of installed applications (Debian's yaws, ejabberd and their dependencies),
%% laid out as OTP's systools lays one out, for `codestore import`:
%%
%%   OUT/releases/VSN/NAME.rel     the applications the named ones need (`applications` and
%%                                 `included_applications`, followed to the end), each at the
%%                                 version its .app file says
%%   OUT/releases/VSN/start.boot   systools:make_script/2's boot script ($ROOT/lib/APP-VSN/ebin)
%%   OUT/lib/APP-VSN               a link to the application's directory, or a rebuilt copy
%%
%% usage: debian_release.escript OUT NAME VSN SPEC...
%%   SPEC is DIR (an application directory) or APP (from the code path), load:DIR (loaded, not started, at boot) or
%%   DIR@NEWVSN (a copy of DIR as application version NEWVSN, as a patch release makes one: the
%%   module named like the application compiled again from its debug_info with one more
%%   function, codestore_copy/0 -> NEWVSN, so that its code and module MD5 are not the
%%   original's; the other files copied byte for byte). Applications no SPEC names come from this Erlang's
%%   code path (OTP's and Debian's /usr/lib/erlang/lib).
%% Prints "ok APP-VSN..." (the release's applications) or "error ...", exit status 0 or 1.
-mode(compile).

main([Out, Name, Vsn | Specs]) ->
    try
        Given = [given(Out, S) || S <- Specs],
        Top = [App || {App, _, _, _} <- Given],
        Apps = closure(Top, Given, []),
        LibDir = filename:join(Out, "lib"),
        ok = filelib:ensure_dir(filename:join(LibDir, "x")),
        Entries =
            [begin
                 {Dir, AppVsn, Type} = where(App, Given),
                 Link = filename:join(LibDir, atom_to_list(App) ++ "-" ++ AppVsn),
                 case filename:dirname(Dir) of
                     LibDir -> ok;  % a rebuilt copy, already in place
                     _ -> ok = file:make_symlink(Dir, Link)
                 end,
                 {App, AppVsn, Type}
             end
             || App <- Apps],
        RelDir = filename:join([Out, "releases", Vsn]),
        ok = filelib:ensure_dir(filename:join(RelDir, "x")),
        Rel = {release, {Name, Vsn}, {erts, erlang:system_info(version)},
               [case T of permanent -> {A, V}; _ -> {A, V, T} end || {A, V, T} <- Entries]},
        RelBase = filename:join(RelDir, Name),
        ok = file:write_file(RelBase ++ ".rel", io_lib:format("~p.~n", [Rel])),
        Path = [filename:join([LibDir, atom_to_list(A) ++ "-" ++ V, "ebin"]) || {A, V, _} <- Entries],
        case systools:make_script(RelBase, [{path, Path}, {outdir, RelDir}, silent, no_warn_sasl]) of
            {ok, _, _} -> ok;
            {error, Mod, Why} -> throw({make_script, Mod:format_error(Why)})
        end,
        ok = file:rename(RelBase ++ ".boot", filename:join(RelDir, "start.boot")),
        ok = file:delete(RelBase ++ ".script"),
        io:format("ok~s~n", [[[" ", atom_to_list(A), "-", V] || {A, V, _} <- Entries]])
    catch
        C:E:S ->
            io:format("error ~p:~p ~p~n", [C, E, S]),
            halt(1)
    end;
main(_) ->
    io:format("error usage: debian_release.escript OUT NAME VSN SPEC...~n"),
    halt(1).

%% {App, Vsn, Dir, Type} for one SPEC.
given(Out, "load:" ++ Spec) ->
    {App, Vsn, Dir, _} = given(Out, Spec),
    {App, Vsn, Dir, load};
given(Out, Spec) ->
    case lists:member($/, Spec) of
        false ->
            % An application's name: from the code path.
            App = list_to_atom(Spec),
            {Dir, Vsn, _} = where(App, []),
            {App, Vsn, Dir, permanent};
        true ->
            given_dir(Out, Spec)
    end.

given_dir(Out, Spec) ->
    case string:split(Spec, "@", trailing) of
        [Dir, NewVsn] -> copy(Dir, NewVsn, filename:join(Out, "lib"));
        [Dir] ->
            {App, Vsn} = app_file(Dir),
            {App, Vsn, Dir, permanent}
    end.

app_file(Dir) ->
    [File] = filelib:wildcard(filename:join([Dir, "ebin", "*.app"])),
    {ok, [{application, App, Keys}]} = file:consult(File),
    {App, proplists:get_value(vsn, Keys)}.

copy(Dir, NewVsn, LibDir) ->
    [AppFile] = filelib:wildcard(filename:join([Dir, "ebin", "*.app"])),
    {ok, [{application, App, Keys}]} = file:consult(AppFile),
    To = filename:join(LibDir, atom_to_list(App) ++ "-" ++ NewVsn),
    Ebin = filename:join(To, "ebin"),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    ok = file:write_file(filename:join(Ebin, filename:basename(AppFile)),
                         io_lib:format("~p.~n", [{application, App, lists:keystore(vsn, 1, Keys, {vsn, NewVsn})}])),
    Main = atom_to_list(App) ++ ".beam",
    [case filename:basename(Beam) of
         Main ->
             {ok, {Mod, [{abstract_code, {raw_abstract_v1, Forms}}]}} = beam_lib:chunks(Beam, [abstract_code]),
             {ok, Mod, Bin} = compile:forms(mark(Forms, NewVsn), [binary, debug_info, return_errors]),
             ok = file:write_file(filename:join(Ebin, Main), Bin);
         Other ->
             {ok, _} = file:copy(Beam, filename:join(Ebin, Other))
     end
     || Beam <- filelib:wildcard(filename:join([Dir, "ebin", "*.beam"]))],
    case filelib:is_dir(filename:join(Dir, "priv")) of
        true -> copy_tree(filename:join(Dir, "priv"), filename:join(To, "priv"));
        false -> ok
    end,
    {App, NewVsn, To, permanent}.

%% The module's forms with codestore_copy/0 exported and defined.
mark(Forms, Vsn) ->
    {Before, [Eof]} = lists:split(length(Forms) - 1, Forms),
    {Head, Rest} = lists:splitwith(fun(F) -> element(3, F) =/= module end, Before),
    [ModAttr | Body] = Rest,
    Head ++ [ModAttr, {attribute, 1, export, [{codestore_copy, 0}]} | Body] ++
        [{function, 1, codestore_copy, 0, [{clause, 1, [], [], [erl_parse:abstract(Vsn)]}]}, Eof].

copy_tree(From, To) ->
    case filelib:is_dir(From) of
        true ->
            ok = filelib:ensure_dir(filename:join(To, "x")),
            {ok, Names} = file:list_dir(From),
            [copy_tree(filename:join(From, N), filename:join(To, N)) || N <- Names],
            ok;
        false ->
            {ok, _} = file:copy(From, To),
            ok
    end.

%% Every application the named ones need, each once, the named ones first.
closure([], _Given, Acc) -> lists:reverse(Acc);
closure([App | T], Given, Acc) ->
    case lists:member(App, Acc) of
        true -> closure(T, Given, Acc);
        false ->
            {Dir, _, _} = where(App, Given),
            {ok, [{application, App, Keys}]} = file:consult(filename:join([Dir, "ebin", atom_to_list(App) ++ ".app"])),
            Needs = proplists:get_value(applications, Keys, []) ++ proplists:get_value(included_applications, Keys, []),
            closure(T ++ Needs, Given, [App | Acc])
    end.

%% {Dir, Vsn, Type} of App: as given, else from the code path.
where(App, Given) ->
    case lists:keyfind(App, 1, Given) of
        {App, Vsn, Dir, Type} -> {Dir, Vsn, Type};
        false ->
            case code:where_is_file(atom_to_list(App) ++ ".app") of
                non_existing -> throw({no_application, App});
                File ->
                    Dir = filename:dirname(filename:dirname(File)),
                    {App, Vsn} = app_file(Dir),
                    {Dir, Vsn, permanent}
            end
    end.
