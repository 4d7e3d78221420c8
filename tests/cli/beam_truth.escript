#!/usr/bin/env escript
%% -*- erlang -*-
%% Erlang's own answers for the CLI acceptance test (tests/cli/cli_test.cpp).
%%
%%   beam_truth.escript info LISTFILE   LISTFILE holds one path per line; prints one JSON
%%                                      object per file and line, the fields of
%%                                      `codestore --json image info` as beam_lib and the
%%                                      VM loader (erlang:prepare_loading/2) see them, and
%%                                      "all_chunks": "ok" or beam_lib:all_chunks/1's reason
%%                                      as {"kind", "chunk", "size", "avail"}
%%   beam_truth.escript strip IN OUT    writes beam_lib:strip/1 of IN's bytes to OUT
%%   beam_truth.escript cmp A B         prints `ok` or beam_lib:cmp/2's reason (~tw)
%%   beam_truth.escript terms F Name... prints one JSON object: {Name: ~tw of the value of
%%                                      beam_lib:chunks(F, [Name])}
%%
%% OTP 25 has no json module, so the JSON is written by hand: strings are Erlang
%% character lists (a chunk id is one character per byte), escaped to pure ASCII.
-mode(compile).

main(["info", ListFile]) ->
    %% The loader logs why it refuses an image; keep stdout for our JSON.
    ok = logger:set_primary_config(level, none),
    {ok, Bin} = file:read_file(ListFile),
    Files = [binary_to_list(L) || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>>],
    lists:foreach(fun(F) -> io:put_chars([info(F), $\n]) end, Files);
main(["strip", In, Out]) ->
    {ok, Bin} = file:read_file(In),
    {ok, {_, Stripped}} = beam_lib:strip(Bin),
    ok = file:write_file(Out, Stripped);
main(["terms", F | Names]) ->
    Pairs = [begin
                 {ok, {_, [{_, V}]}} = beam_lib:chunks(F, [list_to_atom(N)]),
                 {N, text(V)}
             end || N <- Names],
    io:put_chars([obj(Pairs), $\n]);
main(["cmp", A, B]) ->
    {ok, BinA} = file:read_file(A),
    {ok, BinB} = file:read_file(B),
    case beam_lib:cmp(BinA, BinB) of
        ok -> io:format("ok~n");
        {error, beam_lib, Reason} -> io:format("~tw~n", [Reason])
    end.

%% Every field on its own, so that one failure leaves the others standing (as the CLI does).
%% beam_lib is given the bytes, not the name: the same answers, and 3x faster.
info(F) ->
    {ok, Bin} = file:read_file(F),
    Info = beam_lib:info(Bin),
    Mod = case Info of
              [_ | _] -> proplists:get_value(module, Info);
              _ -> undefined
          end,
    Fields =
        [{"module", fun() -> [_ | _] = Info, atom(Mod) end},
         {"chunks", fun() -> [_ | _] = Info,
                             list([list([str(Id), int(Pos), int(Size)])
                                   || {Id, Pos, Size} <- proplists:get_value(chunks, Info)]) end},
         {"exports", fun() -> {ok, {_, [{exports, E}]}} = beam_lib:chunks(Bin, [exports]),
                              list([list([atom(N), int(A)]) || {N, A} <- E]) end},
         {"imports", fun() -> {ok, {_, [{imports, E}]}} = beam_lib:chunks(Bin, [imports]),
                              list([list([atom(M), atom(N), int(A)]) || {M, N, A} <- E]) end},
         {"attributes", fun() -> {ok, {_, [{attributes, A}]}} = beam_lib:chunks(Bin, [attributes]),
                                 text(A) end},
         {"vsn", fun() -> {ok, {_, V}} = beam_lib:version(Bin), text(V) end},
         {"md5", fun() -> {ok, {_, M}} = beam_lib:md5(Bin), str(hex(M)) end}],
    Values = [{Name, attempt(Fun)} || {Name, Fun} <- Fields],
    %% The loader needs the module's name; when beam_lib cannot tell it (a damaged image),
    %% the file's base name says which module the caller means, as code:load_file/1 does.
    LoadAs = case is_atom(Mod) andalso Mod =/= undefined of
                 true -> Mod;
                 false -> list_to_atom(filename:rootname(filename:basename(F)))
             end,
    {Loadable, LoadError} =
        try erlang:prepare_loading(LoadAs, Bin) of
            {error, Why} -> {"false", text(Why)};
            _Prepared -> {"true", "null"}
        catch
            Class:Why -> {"false", text({Class, Why})}
        end,
    Errors = [[str(Name), $:, text(Why)] || {Name, {error, Why}} <- Values],
    obj([{"file", str(F)}]
        ++ [{Name, case V of {ok, J} -> J; {error, _} -> "null" end} || {Name, V} <- Values]
        ++ [{"loadable", Loadable}, {"load_error", LoadError}, {"all_chunks", all_chunks(Bin)},
            {"errors", [${, join(Errors), $}]}]).

%% The reason's kind, and for chunk_too_big the chunk, its declared size and the bytes left.
all_chunks(Bin) ->
    try beam_lib:all_chunks(Bin) of
        {ok, _, _} -> str("ok");
        {error, beam_lib, {chunk_too_big, _, Id, Size, Avail}} ->
            obj([{"kind", str("chunk_too_big")}, {"chunk", str(Id)}, {"size", int(Size)}, {"avail", int(Avail)}]);
        {error, beam_lib, Why} ->
            obj([{"kind", atom(element(1, Why))}, {"chunk", "null"}, {"size", "null"}, {"avail", "null"}])
    catch
        Class:Why -> obj([{"kind", text({Class, Why})}])
    end.

attempt(Fun) ->
    try Fun() of
        {error, beam_lib, Why} -> {error, Why};
        {error, Why} -> {error, Why};
        V -> {ok, V}
    catch
        error:{badmatch, {error, beam_lib, Why}} -> {error, Why};
        error:{badmatch, {error, Why}} -> {error, Why};
        Class:Why -> {error, {Class, Why}}
    end.

obj(Pairs) -> [${, join([[str(K), $:, V] || {K, V} <- Pairs]), $}].
list(Items) -> [$[, join(Items), $]].
join([]) -> [];
join([H | T]) -> [H | [[$, | X] || X <- T]].
int(I) -> integer_to_list(I).
atom(A) -> str(atom_to_list(A)).
text(T) -> str(lists:flatten(io_lib:format("~tw", [T]))).
hex(B) -> lists:flatten([io_lib:format("~2.16.0b", [X]) || <<X>> <= B]).

%% A character list as a JSON string in ASCII: \uXXXX for controls and non-ASCII, surrogate
%% pairs above U+FFFF.
str(Chars) -> [$", [esc(C) || C <- Chars], $"].
esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc(C) when C >= 16#20, C < 16#7f -> C;
esc(C) when C > 16#ffff ->
    V = C - 16#10000,
    [u(16#d800 bor (V bsr 10)), u(16#dc00 bor (V band 16#3ff))];
esc(C) -> u(C).
u(C) -> io_lib:format("\\u~4.16.0b", [C]).
