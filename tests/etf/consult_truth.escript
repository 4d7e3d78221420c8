#!/usr/bin/env escript
%% -*- erlang -*-
%% Erlang's own file:consult/1 of each file named in LISTFILE (one path a line), one output
%% line per file, in order:
%%   ok HEX                     HEX = term_to_binary(Terms), Terms the list file:consult gave
%%   error LINE MODULE KIND     from {error, {LINE, MODULE, Desc}}; KIND is bad_term for
%%                              erl_parse's "bad term", else other
%%   error 0 other              any other {error, Reason}
main([ListFile]) ->
    {ok, Bin} = file:read_file(ListFile),
    Files = [binary_to_list(F) || F <- binary:split(Bin, <<"\n">>, [global, trim_all])],
    lists:foreach(fun(F) -> io:format("~s~n", [answer(file:consult(F))]) end, Files).

answer({ok, Terms}) ->
    ["ok ", hex(term_to_binary(Terms, [{minor_version, 2}]))];
answer({error, {Line, Mod, Desc}}) when is_integer(Line) ->
    Kind = case Desc of "bad term" -> bad_term; _ -> other end,
    io_lib:format("error ~w ~w ~w", [Line, Mod, Kind]);
answer({error, _}) ->
    "error 0 other".

hex(B) -> [io_lib:format("~2.16.0b", [X]) || <<X>> <= B].
