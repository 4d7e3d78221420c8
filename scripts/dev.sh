#!/usr/bin/env bash
# One entry point for people and CI: installs what is missing (Debian 12, as root),
# builds, and runs the main job or the tests.
#
#   bash scripts/dev.sh demo        build the CLI alone, then run the main job on ./codestore.db
#   bash scripts/dev.sh test        build everything, then run the test suite
#   bash scripts/dev.sh check       the inner loop: build, then run the tests labelled `fast`
#   bash scripts/dev.sh test-asan   the suite again, built with AddressSanitizer + UBSan
#   bash scripts/dev.sh test-tsan   the threaded tests, built with ThreadSanitizer
#   bash scripts/dev.sh fuzz [SECS] each libFuzzer target for SECS seconds (default 60)
#   bash scripts/dev.sh build-checks  build what test-asan, test-tsan and fuzz run, run nothing
#   bash scripts/dev.sh deps        install what everything here needs (Debian 12, as root)
#   bash scripts/dev.sh bench       build and run the benchmarks in bench/
#   bash scripts/dev.sh tidy        clang-tidy (the checks in .clang-tidy) over the production code
#   bash scripts/dev.sh format-check  fails if clang-format would change a .cpp/.h file
#
# The demo never deletes an existing ./codestore.db without asking: on a terminal it asks
# (y/N); without one it refuses, before installing or building anything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-$(nproc)}

# What the library and the CLI need to build, and what the demo runs: erlc and OTP's
# images (erlang-nox), Elixir's images (elixir); libpq-dev: a store on PostgreSQL.
demo_packages=(build-essential cmake ninja-build pkg-config
               libsqlitecpp-dev libsqlite3-dev libzstd-dev libfmt-dev libcli11-dev nlohmann-json3-dev
               libssl-dev zlib1g-dev libexpected-dev libarchive-dev libdeflate-dev libpq-dev erlang-nox elixir)
# What the tests, benchmarks, sanitizers and fuzzers add (python3, xz-utils, bzip2: the archive
# tests craft and pack archives with them; rebar3 and erlang-dev: the release tests build real
# rebar3 releases offline, as mix (in elixir) and systools do theirs; ejabberd, rabbitmq-server
# and yaws: real Erlang systems nobody here wrote, imported side by side into channels;
# postgresql: the server the store's suites start for their PostgreSQL half, tests/support/pg_server.h).
test_packages=(git googletest libgtest-dev libgmock-dev libbenchmark-dev erlang-src clang libclang-rt-14-dev
               clang-format clang-tidy python3 xz-utils bzip2 rebar3 erlang-dev ejabberd rabbitmq-server yaws
               postgresql)

# install_deps PACKAGE...: installs those not installed yet.
install_deps() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # ejabberd, rabbitmq-server and yaws are servers: their maintainer scripts would start them
    # (a daemon left running on a CI machine or a developer's, ports taken, an Erlang node
    # holding a cookie). The tests only read their files, so while installing, invoke-rc.d is
    # told by policy-rc.d (Debian's policy layer, exit 101: "action forbidden") to start
    # nothing; one that someone already has is left alone, and ours is removed afterwards.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# scripts/dev.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      own_policy=1
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local status=0
    apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
    if ((own_policy)); then
      rm -f "$policy"
      trap - EXIT
    fi
    return "$status"
  fi
}
install_all() { install_deps "${demo_packages[@]}" "${test_packages[@]}"; }

# build DIR [cmake options...] [-- TARGET...]: configures DIR and builds it (only TARGETs
# when given).
build() {
  local dir=$1 options=() targets=()
  shift
  while (($#)) && [[ $1 != -- ]]; do options+=("$1"); shift; done
  (($#)) && shift && targets=(--target "$@")
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${options[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" "${targets[@]}"
}

# The demo makes a fresh ./codestore.db; one that exists may be someone's work.
demo_db=$root/codestore.db
ask_to_replace_db() {
  [[ -e $demo_db ]] || return 0
  if [[ ! -t 0 ]]; then
    echo "dev.sh demo: $demo_db exists, and the demo starts from a fresh one. Not deleting it" \
         "without asking: run the demo on a terminal to be asked, or move the file away." >&2
    exit 1
  fi
  local answer
  read -r -p "dev.sh demo: $demo_db exists. Delete it and start a fresh one? [y/N] " answer
  if [[ $answer != [yY] && $answer != [yY][eE][sS] ]]; then
    echo "dev.sh demo: left $demo_db as it is." >&2
    exit 1
  fi
}

demo() {
  local cs=$root/build-demo/cli/codestore
  echo "== the image inspector over real Erlang/OTP images"
  "$cs" image info /usr/lib/erlang/lib/stdlib-*/ebin/lists.beam /usr/lib/erlang/lib/kernel-*/ebin/code_server.beam
  "$cs" image md5 /usr/lib/erlang/lib/stdlib-*/ebin/lists.beam

  echo "== the store: a fresh ./codestore.db with the system's Erlang/OTP and Elixir libraries"
  export CODESTORE_DB=$demo_db
  rm -f "$CODESTORE_DB" "$CODESTORE_DB-wal" "$CODESTORE_DB-shm"  # asked before building
  "$cs" init
  "$cs" import /usr/lib/erlang/lib /usr/lib/elixir/lib --note "system libraries"
  echo "== two versions of hello (tests/fixtures/src/hello.erl compiled with -vsn 1 and -vsn 2)"
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/demo-1/ebin" "$tmp/demo-2/ebin"
  erlc -o "$tmp/demo-1/ebin" "$root/tests/fixtures/src/hello.erl"
  sed -e 's/-vsn("1")/-vsn("2")/' -e 's/version() -> 1/version() -> 2/' "$root/tests/fixtures/src/hello.erl" > "$tmp/hello.erl"
  erlc -o "$tmp/demo-2/ebin" "$tmp/hello.erl"
  "$cs" import "$tmp/demo-1/ebin" --note "first build"
  "$cs" import "$tmp/demo-2/ebin" --note "second build"
  rm -rf "$tmp"
  "$cs" ls 'hel*'
  "$cs" versions hello
  "$cs" diff hello@1 hello@2 || (($? == 3))  # exit 3: the versions differ, as diff(1) says 1
  echo "== roll hello back to the version active before"
  "$cs" rollback hello --reason demo
  "$cs" versions hello
  "$cs" history hello
  echo "== stats"
  "$cs" verify
  "$cs" stats
}

# suite DIR [ctest options...]: runs the tests of build DIR with a TMPDIR of their own, and
# fails if any test left something there (every test removes what it makes).
suite() {
  local dir=$1; shift
  local scratch rc=0
  scratch=$(mktemp -d)
  chmod 1777 "$scratch"  # as /tmp: the read-only tests run commands as other users
  TMPDIR=$scratch ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@" || rc=$?
  if [[ -n $(ls -A "$scratch") ]]; then
    echo "== tests left files behind in TMPDIR:" >&2
    (cd "$scratch" && find . -maxdepth 2 | sort | head -50) >&2
    ((rc != 0)) || rc=1
  fi
  rm -rf "$scratch"
  return "$rc"
}

# The production sources: every tracked .cpp but the tests, benchmarks, fuzzers and examples
# (so that a new top-level library is checked without editing this list).
production_sources() {
  git ls-files -z '*.cpp' ':!:tests/**' ':!:bench/**' ':!:fuzz/**' ':!:examples/**'
}

# tidy: clang-tidy with the repository's .clang-tidy (its checks are errors) over the
# production sources, with the compile commands of build/ (configured here, not built).
tidy() {
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  local rc=0
  production_sources | xargs -0 -n 1 -P "$jobs" clang-tidy -p build --quiet || rc=$?
  ((rc == 0)) || echo "dev.sh tidy: clang-tidy found problems (see above)" >&2
  return "$rc"
}

# format_check: every tracked .cpp/.h as clang-format (.clang-format) writes it; lists the
# files that differ. `git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format -i` fixes them.
format_check() {
  local differ
  differ=$(git ls-files -z '*.cpp' '*.h' |
           xargs -0 -n 1 -P "$jobs" sh -c 'clang-format --dry-run -Werror "$0" >/dev/null 2>&1 || echo "$0"')
  if [[ -n $differ ]]; then
    echo "dev.sh format-check: clang-format would change $(wc -l <<<"$differ") files:" >&2
    echo "$differ" | sort >&2
    echo "fix: git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format -i" >&2
    return 1
  fi
}

test_flags=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")

# The sanitizer trees are built with clang (as the fuzzers are), the plain tree with g++: clang
# compiles these sources with ASan in about two thirds of g++'s time (the whole ASan tree in
# 600 s on 2 cores), CI builds both trees cold on every run, and a second compiler's warnings
# and UBSan checks see what the first's do not.
sanitizer_compiler=-DCMAKE_CXX_COMPILER=clang++
# The AddressSanitizer + UBSan tree: -O1 -g1 (line tables, enough for ASan's reports) compiles
# and links much faster than at -O2 -g, and -O1 is what ASan's documentation recommends. The
# slow tests are not run under it (test-asan), so not built either.
build_asan() {
  build build-asan "$sanitizer_compiler" -DCODESTORE_SANITIZE=ON -DCODESTORE_BUILD_BENCH=OFF \
    -DCODESTORE_BUILD_SLOW_TESTS=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
}
# The ThreadSanitizer tree: only the threaded suites (label `threads`) run under it.
build_tsan() {
  build build-tsan "$sanitizer_compiler" -DCODESTORE_TSAN=ON -DCODESTORE_BUILD_BENCH=OFF \
    -- loader_threads_test loader_call_protocol_test server_boot_server_test server_store_source_test \
    server_client_root_test server_nodes_test soak_test
}
cmd=${1:-}
case "$cmd" in
  demo)
    # Only what the main job needs: no tests, benchmarks or sanitizer toolchains.
    ask_to_replace_db
    install_deps "${demo_packages[@]}"
    build build-demo -DCODESTORE_BUILD_TESTS=OFF -DCODESTORE_BUILD_BENCH=OFF -- codestore
    demo ;;
  # -O2 -g1: optimized as released, with line tables (enough for a backtrace and a
  # sanitizer's report). Full -g costs 40% more compile time and three times the object size
  # for the gtest-heavy test files, and CI builds this tree cold on every run.
  test) install_all; build build "${test_flags[@]}"; suite build ;;
  check) install_all; build build "${test_flags[@]}"; suite build -L fast ;;
  test-asan)
    install_all
    build_asan
    # Not the checks of the source tree (labels docs, tests, build): they run no code of ours
    # and the plain pass has run them already.
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      suite build-asan -LE 'install|slow|docs|tests|build' ;;
  test-tsan)
    install_all
    build_tsan
    TSAN_OPTIONS=halt_on_error=1 suite build-tsan -L threads ;;
  # What test-asan, test-tsan and fuzz build, without running anything (CI runs it in the
  # background, niced, while the test suite leaves CPU idle waiting for Erlang nodes).
  build-checks) install_all; build_asan; build_tsan; bash scripts/fuzz.sh 0 ;;
  deps) install_all ;;
  fuzz) install_all; bash scripts/fuzz.sh "${2:-60}" ;;
  bench) install_all; build build "${test_flags[@]}"; for b in build/bench/*/bench_*; do [ -x "$b" ] && "$b"; done ;;
  tidy) install_all; tidy ;;
  format-check) install_deps git clang-format; format_check ;;
  *) echo "usage: bash scripts/dev.sh demo|test|check|test-asan|test-tsan|fuzz [SECS]|build-checks|deps|bench|tidy|format-check" >&2; exit 2 ;;
esac
