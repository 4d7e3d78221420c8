#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, in build-fuzz/) and runs each for
# SECONDS, printing how many inputs it executed. Exit 1 when any target crashed; the
# crashing input is left in build-fuzz/artifacts/<target>/ (copy it to
# fuzz/regressions/<target>/ once fixed: the normal suite replays that folder).
#
#   bash scripts/fuzz.sh 60                 every target for 60 s (CI)
#   bash scripts/fuzz.sh 900 image term     15 minutes each for two targets
#   bash scripts/fuzz.sh 0                  build them, run nothing
#
# Environment: FUZZ_NICE (default 19), FUZZ_JOBS (build parallelism, default 2), FUZZ_PARALLEL
# (fuzzers run at once, default one per core),
# FUZZ_BUILD (default build-fuzz), FUZZ_TIMEOUT (seconds one input may take, default 60: a
# loaded machine starves niced runs, and a starved input is not a hang).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:?usage: scripts/fuzz.sh SECONDS [target...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(image term gzip consult archive shell); fi
build=${FUZZ_BUILD:-build-fuzz}
# Absolute: the shell target changes its working directory on its first input.
case $build in /*) ;; *) build=$root/$build ;; esac
nice_level=${FUZZ_NICE:-19}

# -O1 -g1 (line tables: enough for a crash's stack), as libFuzzer's documentation builds its
# targets, rather than the build type's -O2 -g (full -g alone cost the test sources 40 % more
# compile time, scripts/dev.sh), which CI pays on every cold run.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DCODESTORE_FUZZ=ON -DCODESTORE_BUILD_TESTS=OFF -DCODESTORE_BUILD_BENCH=OFF >/dev/null

built=()
for t in "${targets[@]}"; do
  if [ -f "fuzz/${t}_fuzzer.cpp" ]; then built+=("${t}_fuzzer"); else echo "== $t: no fuzz/${t}_fuzzer.cpp, skipped"; fi
done
((${#built[@]})) || exit 0
seeds=()
if [ -f tests/image/damage.cpp ]; then seeds=(damage_seeds); fi
nice -n "$nice_level" cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target "${built[@]}" "${seeds[@]}"
((seconds > 0)) || exit 0  # 0: build only (dev.sh build-checks)

# fuzz_one TARGET: runs it for SECONDS and prints one line (and the crash when it failed);
# exits with the fuzzer's status.
fuzz_one() {
  local target=$1 t=${1%_fuzzer}
  local corpus=$build/corpus/$t artifacts=$build/artifacts/$t/ log=$build/fuzz-${1%_fuzzer}.log rc=0
  mkdir -p "$corpus" "$artifacts"
  # The working corpus grows in the build dir; the repo keeps only the small seeds.
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  # The image target also starts from every damaged variant of the seed images.
  if [ "$t" = image ] && [ -x "$build/fuzz/damage_seeds" ] && [ ! -e "$corpus/.damaged" ]; then
    "$build/fuzz/damage_seeds" "$corpus" fuzz/corpus/image/*.beam >/dev/null && touch "$corpus/.damaged"
  fi
  nice -n "$nice_level" "$build/fuzz/$target" "$corpus" -max_total_time="$seconds" -timeout=${FUZZ_TIMEOUT:-60} \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1 || rc=$?
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if ((rc == 0)); then
    echo "== $t: $execs execs in ${seconds}s, $cov, corpus $(ls "$corpus" | wc -l) inputs"
  else
    echo "== $t: FAILED (exit $rc) after $execs execs; input in $artifacts; log $log"
    grep -A 30 -m 1 'ERROR: \|fuzz invariant broken\|==ERROR' "$log" | head -40 || true
  fi
  return "$rc"
}

# FUZZ_PARALLEL targets at a time (default: one per core): each fuzzer is one process on
# one core, so on 2 cores two run side by side for the same SECONDS each.
parallel=${FUZZ_PARALLEL:-$(nproc)}
failed=0
for target in "${built[@]}"; do
  out=$build/fuzz-${target%_fuzzer}
  rm -f "$out.rc"
  { rc=0; fuzz_one "$target" >"$out.summary" || rc=$?; echo "$rc" >"$out.rc"; } &
  while (( $(jobs -rp | wc -l) >= parallel )); do wait -n || true; done
done
wait
for target in "${built[@]}"; do
  out=$build/fuzz-${target%_fuzzer}
  cat "$out.summary"
  [[ $(cat "$out.rc" 2>/dev/null) == 0 ]] || failed=1
done
exit $failed
