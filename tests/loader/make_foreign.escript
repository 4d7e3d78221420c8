#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% The images of the differential test (differential_test.cpp) that do not follow the
%% conventions of tests/fixtures/src/loader/, made in a scenario's scratch dir:
%%   foreign/v1, foreign/v2: counter.beam (tests/fixtures/src/loader_foreign/counter.erl, a
%%       gen_server-style module without start/1), compiled now with -DVSN="1" and "2";
%%   otp/misc_supp.beam: a real OTP module (sasl's, which every OTP install has), copied
%%       as this system has it;
%%   noattr/m.beam: v1/m.beam without its Attr chunk (beam_lib:build_module of the rest).
%% Usage: make_foreign.escript SOURCE_DIR SCRATCH_DIR

main([Src, Dir]) ->
    [compile_counter(Src, Dir, V) || V <- ["1", "2"]],
    case code:which(misc_supp) of
        Otp when is_list(Otp) -> write(filename:join([Dir, "otp", "misc_supp.beam"]), read(Otp));
        _ -> fail("misc_supp (OTP's sasl) is not installed")
    end,
    {ok, _, Chunks} = beam_lib:all_chunks(read(filename:join([Dir, "v1", "m.beam"]))),
    {ok, NoAttr} = beam_lib:build_module([C || {Id, _} = C <- Chunks, Id =/= "Attr"]),
    write(filename:join([Dir, "noattr", "m.beam"]), NoAttr);
main(_) ->
    io:format(standard_error, "usage: make_foreign.escript SOURCE_DIR SCRATCH_DIR~n", []),
    halt(2).

fail(Why) ->
    io:format(standard_error, "make_foreign: ~s~n", [Why]),
    halt(1).

compile_counter(Src, Dir, V) ->
    Out = filename:join([Dir, "foreign", "v" ++ V]),
    ok = filelib:ensure_dir(filename:join(Out, "x")),
    File = filename:join([Src, "tests", "fixtures", "src", "loader_foreign", "counter.erl"]),
    {ok, counter} = compile:file(File, [deterministic, report, {d, 'VSN', V}, {outdir, Out}]).

read(File) ->
    {ok, Bin} = file:read_file(File),
    Bin.

write(File, Bin) ->
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, Bin).
