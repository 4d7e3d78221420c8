#!/usr/bin/env escript
%% bench_live_upgrade's Erlang side (bench/server/bench_live_upgrade.cpp):
%%   build DIR          the application bench_live in two versions, X = 0.1.0 and X' = 0.2.0,
%%                      generated here, compiled (deterministic) and laid out as two releases
%%                      DIR/rel1 and DIR/rel2 (kernel, stdlib, sasl linked from this OTP; .app,
%%                      .rel, start.boot by systools:make_script, an empty sys.config). 13
%%                      modules: 10 differ between X and X' (bl_srv1..4: gen_servers whose
%%                      state gains a field, code_change both ways; bl_lib1..6: plain modules,
%%                      bl_lib1 with a new export that bl_srv1 calls in X'), 3 are the same
%%                      (the application callback, the supervisor, and bl_bench: what the
%%                      bench asks a node through its stdin).
%%   relup DIR APPUP    writes APPUP (the text `codestore plan --appup` printed: the store's
%%                      plan as .appup terms) as X''s bench_live.appup and makes X''s relup
%%                      with systools:make_relup (up from X, down to X), as release_handler
%%                      needs it.
-mode(compile).

-define(SRVS, 4).
-define(LIBS, 6).
-define(FUNS, 24).  % functions per plain module, so that each is a few KB as real ones are

main(["build", Dir]) ->
    Otp = [{kernel, vsn(kernel)}, {stdlib, vsn(stdlib)}, {sasl, vsn(sasl)}],
    [build(Dir, N, Vsn, Otp) || {N, Vsn} <- [{1, "0.1.0"}, {2, "0.2.0"}]],
    io:format("built~n"),
    halt(0);
main(["relup", Dir, AppupFile]) ->
    {ok, Appup} = file:read_file(AppupFile),
    Ebin2 = filename:join([Dir, "rel2", "lib", "bench_live-0.2.0", "ebin"]),
    ok = file:write_file(filename:join(Ebin2, "bench_live.appup"), Appup),
    {ok, [{"0.2.0", [{"0.1.0", _}], [{"0.1.0", _}]}]} = file:consult(filename:join(Ebin2, "bench_live.appup")),
    Rel1 = filename:join([Dir, "rel1", "releases", "0.1.0", "bench_live"]),
    Rel2 = filename:join([Dir, "rel2", "releases", "0.2.0", "bench_live"]),
    Path = [filename:join([Dir, R, "lib", "*", "ebin"]) || R <- ["rel2", "rel1"]],
    case systools:make_relup(Rel2, [Rel1], [Rel1], [{path, Path}, {outdir, filename:dirname(Rel2)}, silent,
                                                    warnings_as_errors]) of
        {ok, _, _, []} -> io:format("relup~n"), halt(0);
        Other -> io:format("make_relup: ~tp~n", [Other]), halt(1)
    end.

vsn(App) ->
    ok = case application:load(App) of ok -> ok; {error, {already_loaded, _}} -> ok end,
    {ok, V} = application:get_key(App, vsn),
    V.

build(Dir, N, Vsn, Otp) ->
    Root = filename:join(Dir, "rel" ++ integer_to_list(N)),
    Src = filename:join(Dir, "src" ++ integer_to_list(N)),
    Ebin = filename:join([Root, "lib", "bench_live-" ++ Vsn, "ebin"]),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    ok = filelib:ensure_dir(filename:join(Src, "x")),
    Sources = [{bench_live_app, app_src()}, {bench_live_sup, sup_src()}, {bl_bench, bench_src()}]
        ++ [{srv(I), srv_src(I, N, Vsn)} || I <- lists:seq(1, ?SRVS)]
        ++ [{lib(I), lib_src(I, N, Vsn)} || I <- lists:seq(1, ?LIBS)],
    Mods = [begin
                F = filename:join(Src, atom_to_list(M) ++ ".erl"),
                ok = file:write_file(F, Text),
                %% deterministic: the unchanged modules are the same bytes in both versions.
                {ok, M} = compile:file(F, [{outdir, Ebin}, deterministic, report, warnings_as_errors]),
                M
            end || {M, Text} <- Sources],
    write(filename:join(Ebin, "bench_live.app"),
          {application, bench_live,
           [{description, "bench_live_upgrade's application"}, {vsn, Vsn}, {modules, lists:sort(Mods)},
            {registered, [bench_live_sup | [srv(I) || I <- lists:seq(1, ?SRVS)]]},
            {applications, [kernel, stdlib, sasl]}, {mod, {bench_live_app, []}}]}),
    [ok = file:make_symlink(code:lib_dir(A), filename:join([Root, "lib", atom_to_list(A) ++ "-" ++ V]))
     || {A, V} <- Otp],
    RelDir = filename:join([Root, "releases", Vsn]),
    ok = filelib:ensure_dir(filename:join(RelDir, "x")),
    write(filename:join(RelDir, "bench_live.rel"),
          {release, {"bench_live", Vsn}, {erts, erlang:system_info(version)}, Otp ++ [{bench_live, Vsn}]}),
    ok = file:write_file(filename:join(RelDir, "sys.config"), "[].\n"),
    {ok, _, _} = systools:make_script(filename:join(RelDir, "bench_live"),
                                      [{path, [filename:join([Root, "lib", "*", "ebin"])]}, {outdir, RelDir},
                                       silent]),
    ok = file:rename(filename:join(RelDir, "bench_live.boot"), filename:join(RelDir, "start.boot")),
    ok = file:delete(filename:join(RelDir, "bench_live.script")).

srv(I) -> list_to_atom("bl_srv" ++ integer_to_list(I)).
lib(I) -> list_to_atom("bl_lib" ++ integer_to_list(I)).

write(File, Term) -> ok = file:write_file(File, io_lib:format("~tp.~n", [Term])).

app_src() ->
    "-module(bench_live_app).\n-behaviour(application).\n-export([start/2, stop/1]).\n"
    "start(_, _) -> bench_live_sup:start_link().\nstop(_) -> ok.\n".

sup_src() ->
    Children = lists:join(", ", [io_lib:format("#{id => ~s, start => {~s, start_link, []}}", [srv(I), srv(I)])
                                 || I <- lists:seq(1, ?SRVS)]),
    ["-module(bench_live_sup).\n-behaviour(supervisor).\n-export([start_link/0, init/1]).\n"
     "start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).\n"
     "init([]) -> {ok, {#{strategy => one_for_one, intensity => 0, period => 1}, [", Children, "]}}.\n"].

%% What a node answers on its stdin, one line each:
%%   check          "check sizes=[...] answers=[...] bumps=[...] loaded=M PATH MD5;...": the size
%%                  of each gen_server's state (sys:get_state: 3 in X, 4 in X'), what each
%%                  module's vsn/0 answers, each gen_server's answer to a call, and every loaded
%%                  module under the node's root with the MD5 of its loaded code
%%   unpack         release_handler:unpack_release("0.2.0/bench_live")
%%   install VSN    release_handler:install_release(VSN), timed in the node (timer:tc)
bench_src() ->
    Srvs = lists:join(", ", [atom_to_list(srv(I)) || I <- lists:seq(1, ?SRVS)]),
    Mods = lists:join(", ", [atom_to_list(M) || M <- [srv(I) || I <- lists:seq(1, ?SRVS)]
                                                     ++ [lib(I) || I <- lists:seq(1, ?LIBS)]]),
    ["-module(bl_bench).\n-export([main/0]).\n"
     "main() -> io:format(\"ready~n\"), loop().\n"
     "loop() -> case io:get_line(\"\") of eof -> halt(0); L -> cmd(string:trim(L)), loop() end.\n"
     "cmd(\"check\") ->\n"
     "    Root = code:root_dir(),\n"
     "    States = [sys:get_state(M) || M <- [", Srvs, "]],\n"
     "    Answers = [M:vsn() || M <- [", Mods, "]],\n"
     "    Loaded = [lists:flatten([atom_to_list(M), \" \", F, \" \", [io_lib:format(\"~2.16.0b\", [B]) "
     "|| <<B>> <= M:module_info(md5)]]) || {M, F} <- code:all_loaded(), is_list(F), lists:prefix(Root ++ \"/\", F)],\n"
     "    Bumps = [M:bump() || M <- [", Srvs, "]],\n"
     "    io:format(\"check sizes=~w answers=~0p bumps=~w loaded=~s~n\",\n"
     "              [[tuple_size(S) || S <- States], Answers, Bumps, lists:join(\";\", Loaded)]);\n"
     "cmd(\"unpack\") -> io:format(\"unpack ~0p~n\", [release_handler:unpack_release(\"0.2.0/bench_live\")]);\n"
     "cmd(\"install \" ++ Vsn) ->\n"
     "    {Us, R} = timer:tc(release_handler, install_release, [Vsn]),\n"
     "    io:format(\"install us=~p result=~0p~n\", [Us, R]);\n"
     "cmd(\"halt\") -> halt(0);\n"
     "cmd(Other) -> io:format(\"unknown ~0p~n\", [Other]).\n"].

%% A gen_server holding {st, Calls, Id} in X and {st, Calls, Id, Since} in X'; its code_change
%% converts both ways (down: in X''s code, before the switch, as release_handler runs it).
srv_src(I, N, Vsn) ->
    Mod = atom_to_list(srv(I)),
    {Init, Bump, Get} =
        case N of
            1 -> {"{ok, {st, 0, " ++ integer_to_list(I) ++ "}}",
                  "handle_call(bump, _From, {st, C, Id}) -> {reply, C + 1, {st, C + 1, Id}};\n",
                  "handle_call(get, _From, S) -> {reply, S, S};\n"};
            2 -> {"{ok, {st, 0, " ++ integer_to_list(I) ++ ", erlang:system_time(millisecond)}}",
                  "handle_call(bump, _From, {st, C, Id, T}) -> {reply, C + 1, {st, C + 1, Id, T}};\n",
                  case I of
                      1 -> "handle_call(get, _From, S) -> {reply, {bl_lib1:tag(S), S}, S};\n";
                      _ -> "handle_call(get, _From, S) -> {reply, S, S};\n"
                  end}
        end,
    CodeChange =
        case N of
            1 -> "code_change(_OldVsn, S, _Extra) -> {ok, S}.\n";
            2 -> "code_change({down, _Vsn}, {st, C, Id, _T}, _Extra) -> {ok, {st, C, Id}};\n"
                 "code_change(_OldVsn, {st, C, Id}, _Extra) -> {ok, {st, C, Id, erlang:system_time(millisecond)}}.\n"
        end,
    ["-module(", Mod, ").\n-behaviour(gen_server).\n-vsn(\"", Vsn, "\").\n"
     "-export([start_link/0, get/0, bump/0, vsn/0]).\n"
     "-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).\n"
     "start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).\n"
     "get() -> gen_server:call(?MODULE, get).\n"
     "bump() -> gen_server:call(?MODULE, bump).\n"
     "vsn() -> \"", Vsn, "\".\n"
     "init([]) -> ", Init, ".\n", Bump, Get,
     "handle_call(_, _From, S) -> {reply, error, S}.\n"
     "handle_cast(_, S) -> {noreply, S}.\n"
     "handle_info(_, S) -> {noreply, S}.\n"
     "terminate(_, _) -> ok.\n", CodeChange].

%% A plain module of ?FUNS small functions, each version's its own (f_K adds N); bl_lib1 gains
%% tag/1 in X'.
lib_src(I, N, Vsn) ->
    Mod = atom_to_list(lib(I)),
    Funs = [io_lib:format("f_~b(X) when is_integer(X) -> X * ~b + ~b;\nf_~b(L) when is_list(L) -> "
                          "[f_~b(E) || E <- L];\nf_~b(_) -> {~s, ~b}.\n",
                          [K, K, N, K, K, K, Mod, N]) || K <- lists:seq(1, ?FUNS)],
    Exports = lists:join(", ", ["vsn/0"] ++ [io_lib:format("f_~b/1", [K]) || K <- lists:seq(1, ?FUNS)]
                               ++ case {I, N} of {1, 2} -> ["tag/1"]; _ -> [] end),
    Tag = case {I, N} of
              {1, 2} -> "tag(S) -> {tagged, element(1, S)}.\n";
              _ -> ""
          end,
    ["-module(", Mod, ").\n-vsn(\"", Vsn, "\").\n-export([", Exports, "]).\n"
     "vsn() -> \"", Vsn, "\".\n", Tag, Funs].
