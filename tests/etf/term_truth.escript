#!/usr/bin/env escript
%% -*- erlang -*-
%% Prints Erlang's own answers for the term codec tests, one line each.
%%   term_truth.escript exprs FILE   FILE holds one Erlang expression per line; prints
%%                                   "hex(term_to_binary(T)) hex(io_lib:format("~tw",[T]))
%%                                    hex(term_to_binary(T, [{minor_version, 0}]))
%%                                    hex(term_to_binary(T, [{minor_version, 2}]))"
%%   term_truth.escript chunks Id... -- BEAM...
%%                                   per image and chunk id (Attr, CInf, Meta, Dbgi, LitT):
%%                                   "File Id Size Crc" of the UTF-8 bytes of ~tw of each term
%%                                   (LitT: every literal, each followed by "\n").
main(["exprs", File]) ->
    {ok, Bin} = file:read_file(File),
    Lines = [L || L <- string:split(unicode:characters_to_list(Bin), "\n", all), L =/= ""],
    lists:foreach(fun(L) ->
                          {ok, Toks, _} = erl_scan:string(L ++ "."),
                          {ok, Expr} = erl_parse:parse_exprs(Toks),
                          {value, T, _} = erl_eval:exprs(Expr, []),
                          io:format("~s ~s ~s ~s~n",
                                    [hex(term_to_binary(T)), hex(fmt(T)),
                                     hex(term_to_binary(T, [{minor_version, 0}])),
                                     hex(term_to_binary(T, [{minor_version, 2}]))])
                  end, Lines);
main(["chunks" | Rest]) ->
    {Ids, ["--" | Files]} = lists:splitwith(fun(A) -> A =/= "--" end, Rest),
    lists:foreach(fun(F) -> chunks(F, Ids) end, Files).

chunks(File, Ids) ->
    {ok, _, Chunks} = beam_lib:all_chunks(File),
    lists:foreach(
      fun({Id, Data}) ->
              case lists:member(Id, Ids) of
                  false -> ok;
                  true ->
                      Text = text(Id, Data),
                      io:format("~s ~s ~b ~b~n", [File, Id, byte_size(Text), erlang:crc32(Text)])
              end
      end, Chunks).

text("LitT", <<_:32, Z/binary>>) ->
    <<N:32, Lits/binary>> = zlib:uncompress(Z),
    iolist_to_binary(literals(N, Lits));
text(_, Data) ->
    fmt(binary_to_term(Data)).

literals(0, <<>>) -> [];
literals(N, <<Len:32, T:Len/binary, Rest/binary>>) ->
    [fmt(binary_to_term(T)), "\n" | literals(N - 1, Rest)].

fmt(T) -> unicode:characters_to_binary(io_lib:format("~tw", [T])).

hex(B) -> binary:encode_hex(B).
