#!/usr/bin/env escript
%% -*- erlang -*-
%% What Erlang/OTP says about module images, for the image reader's differential tests.
%%
%%   escript image_truth.escript verdicts MANIFEST OUT  (lines: Path<TAB>Module)
%%     appends to OUT one line per image: Path, then Key=Verdict for beam_lib:info/1, md5/1, chunks/2 of
%%     atoms, exports, imports, locals, attributes, compile_info, version/1, all_chunks/1, and
%%     erlang:prepare_loading/2 (load=ok|badfile); a verdict is ok, the error reason's
%%     kind (chunk_too_big, ...), or crash when beam_lib raised instead of returning.
%%     md5hex=<32 hex digits> follows when md5 succeeded.
%%   escript image_truth.escript md5load LIST        (lines: Path)
%%     prints Path<TAB>md5 hex<TAB>ok|badfile (erlang:prepare_loading/2)
%%   escript image_truth.escript terms LIST          (lines: Path)
%%     prints Path<TAB>Name<TAB>~w of beam_lib:chunks(Bin, [Name]) for each chunk name
%%   escript image_truth.escript strip LIST OUTDIR   (lines: Path)
%%     writes beam_lib:strip/1 of each image to OUTDIR/<N>.beam; prints N<TAB>Path<TAB>verdict
%%   escript image_truth.escript cmp PAIRS           (lines: PathA<TAB>PathB)
%%     prints PathA<TAB>PathB<TAB>verdict of beam_lib:cmp/2
main(["verdicts", Manifest, Out]) ->
    %% Each answer is appended to Out before the next image is loaded: OTP 25's JIT can
    %% abort the VM on damaged code, and the caller resumes after the last answer.
    [ok = file:write_file(Out, verdicts(Line), [append]) || Line <- lines(Manifest)],
    ok;
main(["md5load", List]) ->
    [begin
         {ok, Bin} = file:read_file(Path),
         {ok, {M, D}} = beam_lib:md5(Bin),
         Load = case erlang:prepare_loading(M, Bin) of {error, R} -> R; _ -> ok end,
         io:format("~ts\t~s\t~w~n", [Path, [io_lib:format("~2.16.0b", [X]) || <<X>> <= D], Load])
     end || Path <- lines(List)],
    ok;
main(["terms", List]) ->
    Names = [atoms, exports, labeled_exports, imports, indexed_imports, locals, labeled_locals,
             attributes, compile_info],
    [begin
         {ok, Bin} = file:read_file(Path),
         [io:format("~ts\t~s\t~w~n", [Path, N, case beam_lib:chunks(Bin, [N]) of
                                                  {ok, {_, [{N, V}]}} -> V;
                                                  {error, beam_lib, R} -> {error, element(1, R)}
                                              end]) || N <- Names]
     end || Path <- lines(List)],
    ok;
main(["strip", List, OutDir]) ->
    lists:foldl(fun(Path, N) ->
                        {ok, Bin} = file:read_file(Path),
                        V = case catch beam_lib:strip(Bin) of
                                {ok, {_, Stripped}} ->
                                    ok = file:write_file(filename:join(OutDir, integer_to_list(N) ++ ".beam"), Stripped),
                                    "ok";
                                Other -> kind(Other)
                            end,
                        io:format("~w\t~ts\t~s~n", [N, Path, V]),
                        N + 1
                end, 0, lines(List)),
    ok;
main(["cmp", Pairs]) ->
    [begin
         [A, B] = string:split(Line, "\t"),
         {ok, BinA} = file:read_file(A),
         {ok, BinB} = file:read_file(B),
         io:format("~ts\t~ts\t~s~n", [A, B, kind(catch beam_lib:cmp(BinA, BinB))])
     end || Line <- lines(Pairs)],
    ok.

lines(File) ->
    {ok, Bin} = file:read_file(File),
    [unicode:characters_to_list(L) || L <- binary:split(Bin, <<"\n">>, [global, trim_all])].

verdicts(Line) ->
    [Path, Mod] = string:split(Line, "\t"),
    {ok, Bin} = file:read_file(Path),
    Calls = [{info, fun() -> beam_lib:info(Bin) end},
             {md5, fun() -> beam_lib:md5(Bin) end},
             {atoms, fun() -> beam_lib:chunks(Bin, [atoms]) end},
             {exports, fun() -> beam_lib:chunks(Bin, [exports]) end},
             {imports, fun() -> beam_lib:chunks(Bin, [imports]) end},
             {locals, fun() -> beam_lib:chunks(Bin, [locals]) end},
             {attributes, fun() -> beam_lib:chunks(Bin, [attributes]) end},
             {compile_info, fun() -> beam_lib:chunks(Bin, [compile_info]) end},
             {vsn, fun() -> beam_lib:version(Bin) end},
             {all_chunks, fun() -> beam_lib:all_chunks(Bin) end}],
    Vs = [io_lib:format("~s=~s", [K, kind(try F() catch _:_ -> crash end)]) || {K, F} <- Calls],
    Load = try erlang:prepare_loading(list_to_atom(Mod), Bin) of
               {error, R} -> atom_to_list(R);
               _Prepared -> "ok"
           catch _:_ -> "crash"
           end,
    Md5 = case catch beam_lib:md5(Bin) of
              {ok, {_, D}} -> ["\tmd5hex=", [io_lib:format("~2.16.0b", [X]) || <<X>> <= D]];
              _ -> []
          end,
    unicode:characters_to_binary(io_lib:format("~ts\t~s\tload=~s~s~n", [Path, lists:join("\t", Vs), Load, Md5])).

kind(ok) -> "ok";
kind({ok, _}) -> "ok";
kind({ok, _, _}) -> "ok";
kind(L) when is_list(L) -> "ok";  % beam_lib:info/1
kind({error, beam_lib, R}) when is_tuple(R) -> atom_to_list(element(1, R));
kind({error, beam_lib, R}) when is_atom(R) -> atom_to_list(R);
kind(crash) -> "crash";
kind({'EXIT', _}) -> "crash";
kind(_) -> "crash".
