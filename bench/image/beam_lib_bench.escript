#!/usr/bin/env escript
%% -*- erlang -*-
%%! +S 1:1
%% The baseline for bench_image: Erlang's beam_lib doing the same work over the same images.
%%
%%   beam_lib_bench.escript LISTFILE
%%
%% LISTFILE holds one path per line. Per image: beam_lib:chunks(B, [exports, imports,
%% attributes]) and beam_lib:md5(B), once from binaries read beforehand and once from the
%% files. One warm-up pass first (module loading, file cache). Prints one line:
%%   "binaries_us files_us images bytes"
%% One scheduler (+S 1:1, set on line 3), like our one core.
-mode(compile).

main([ListFile]) ->
    {ok, List} = file:read_file(ListFile),
    Files = [binary_to_list(L) || L <- binary:split(List, <<"\n">>, [global]), L =/= <<>>],
    Bins = [begin {ok, B} = file:read_file(F), B end || F <- Files],
    Bytes = lists:sum([byte_size(B) || B <- Bins]),
    _ = pass(Bins),
    {BinUs, ok} = timer:tc(fun() -> pass(Bins) end),
    {FileUs, ok} = timer:tc(fun() -> pass(Files) end),
    io:format("~b ~b ~b ~b~n", [BinUs, FileUs, length(Files), Bytes]).

pass(Beams) ->
    lists:foreach(fun(B) ->
                          {ok, {_, [_, _, _]}} = beam_lib:chunks(B, [exports, imports, attributes]),
                          {ok, {_, <<_:16/binary>>}} = beam_lib:md5(B)
                  end, Beams).
