#!/usr/bin/env escript
%% The upgrade plan's fixture and its truth (tests/store/upgrade_fixture.cpp):
%%   build SRC DIR   pa 0.1.0 and 0.2.0 (SRC/v1, SRC/v2: tests/fixtures/upgrade) compiled and
%%                   laid out as two releases DIR/rel1 and DIR/rel2 (.app, .rel, sys.config, a priv
%%                   NIF library, kernel, stdlib and sasl linked to OTP's, start.boot by
%%                   systools:make_script); then, per module, what release_handler passes as its
%%                   vsn: `vsn M Hex1 Hex2 D1 D2` (release_handler_1:get_current_vsn/1 with v1's,
%%                   then v2's ebin on the path, term_to_binary in hex; D: 1 when the vsn
%%                   attribute is [binary:decode_unsigned(beam_lib:md5/1)], the compiler's default).
%%   relup DIR       systools:make_relup of rel2 from and to rel1, with the .appup found in rel2's
%%                   ebin: `relup Hex` (the relup term) and `appup Hex` (file:consult/1 of the .appup).
-mode(compile).

main(["build", Src, Dir]) ->
    Erts = erlang:system_info(version),
    Kernel = vsn(kernel),
    Stdlib = vsn(stdlib),
    Sasl = vsn(sasl),
    Releases = [{1, "0.1.0"}, {2, "0.2.0"}],
    [build(Src, Dir, N, Vsn, Erts, [{kernel, Kernel}, {stdlib, Stdlib}, {sasl, Sasl}]) || {N, Vsn} <- Releases],
    Mods = lists:usort([list_to_atom(filename:basename(F, ".erl"))
                        || V <- ["v1", "v2"], F <- filelib:wildcard(filename:join([Src, V, "*.erl"]))]),
    [Vsns1, Vsns2] = [truth(ebin(Dir, N, Vsn), Mods) || {N, Vsn} <- Releases],
    [io:format("vsn ~s ~s ~s ~w ~w~n", [M, hex(V1), hex(V2), D1, D2])
     || {{M, V1, D1}, {M, V2, D2}} <- lists:zip(Vsns1, Vsns2)],
    halt(0);
main(["relup", Dir]) ->
    Rel1 = filename:join([Dir, "rel1", "releases", "0.1.0", "pa"]),
    Rel2 = filename:join([Dir, "rel2", "releases", "0.2.0", "pa"]),
    Path = [filename:join([Dir, "rel1", "lib", "*", "ebin"]), filename:join([Dir, "rel2", "lib", "*", "ebin"])],
    case systools:make_relup(Rel2, [Rel1], [Rel1], [{path, Path}, {outdir, Dir}, silent]) of
        {ok, Relup, _Mod, _Warnings} ->
            {ok, Appup} = file:consult(filename:join(ebin(Dir, 2, "0.2.0"), "pa.appup")),
            io:format("relup ~s~nappup ~s~n", [hex(Relup), hex(Appup)]),
            halt(0);
        {error, Mod, Reason} ->
            io:format("error ~s~n", [Mod:format_error(Reason)]),
            halt(1)
    end;
main(_) ->
    halt(2).

vsn(App) ->
    _ = application:load(App),
    {ok, V} = application:get_key(App, vsn),
    V.

ebin(Dir, N, Vsn) ->
    filename:join([Dir, "rel" ++ integer_to_list(N), "lib", "pa-" ++ Vsn, "ebin"]).

build(Src, Dir, N, Vsn, Erts, Otp) ->
    Root = filename:join(Dir, "rel" ++ integer_to_list(N)),
    Ebin = ebin(Dir, N, Vsn),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    Files = filelib:wildcard(filename:join([Src, "v" ++ integer_to_list(N), "*.erl"])),
    Mods = [begin {ok, M} = compile:file(F, [{outdir, Ebin}, report]), M end || F <- Files],
    write(filename:join(Ebin, "pa.app"),
          {application, pa, [{description, "upgrade plan fixture"}, {vsn, Vsn}, {modules, Mods},
                             {registered, []}, {applications, [kernel, stdlib]},
                             {env, [{level, N}, {name, "pa"}]}]}),
    Priv = filename:join([Root, "lib", "pa-" ++ Vsn, "priv", "lib", "pa_nif.so"]),
    ok = filelib:ensure_dir(Priv),
    ok = file:write_file(Priv, ["not a real library, version ", Vsn]),
    [ok = file:make_symlink(code:lib_dir(A), filename:join([Root, "lib", atom_to_list(A) ++ "-" ++ V]))
     || {A, V} <- Otp],
    RelDir = filename:join([Root, "releases", Vsn]),
    ok = filelib:ensure_dir(filename:join(RelDir, "x")),
    write(filename:join(RelDir, "pa.rel"),
          {release, {"pa", Vsn}, {erts, Erts}, Otp ++ [{pa, Vsn}]}),
    write(filename:join(RelDir, "sys.config"), [{pa, [{level, N}]}]),
    {ok, _, _} = systools:make_script(filename:join(RelDir, "pa"),
                                      [{path, [filename:join([Root, "lib", "*", "ebin"])]}, {outdir, RelDir},
                                       silent]),
    ok = file:rename(filename:join(RelDir, "pa.boot"), filename:join(RelDir, "start.boot")),
    ok = file:delete(filename:join(RelDir, "pa.script")).

write(File, Term) ->
    ok = file:write_file(File, io_lib:format("~p.~n", [Term])).

truth(Ebin, Mods) ->
    true = code:add_patha(Ebin),
    R = [{M, release_handler_1:get_current_vsn(M), default(M)} || M <- Mods],
    true = code:del_path(Ebin),
    R.

default(M) ->
    case code:which(M) of
        File when is_list(File) ->
            {ok, {M, Vsn}} = beam_lib:version(File),
            {ok, {M, Md5}} = beam_lib:md5(File),
            case Vsn =:= [binary:decode_unsigned(Md5)] of true -> 1; false -> 0 end;
        _ -> 0
    end.

hex(T) ->
    [io_lib:format("~2.16.0b", [B]) || <<B>> <= term_to_binary(T)].
