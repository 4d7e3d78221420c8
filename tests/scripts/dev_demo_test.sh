#!/usr/bin/env bash
# `bash scripts/dev.sh demo`, run on a copy of the script with apt-get, dpkg-query and cmake
# replaced by stubs that log their arguments (dpkg-query says nothing is installed; the
# build stops with exit 99). Checks: the demo installs and builds only what the main job
# needs, and never deletes an existing ./codestore.db without asking.
#   usage: dev_demo_test.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/repo/scripts" "$tmp/bin"
cp "$src/scripts/dev.sh" "$tmp/repo/scripts/"
calls=$tmp/calls
stub() {  # stub NAME EXIT-STATUS-SCRIPT
  printf '#!/bin/sh\necho "%s $*" >> "%s"\n%s\n' "$1" "$calls" "$2" > "$tmp/bin/$1"
  chmod +x "$tmp/bin/$1"
}
stub dpkg-query 'exit 1'
stub apt-get 'exit 0'
stub cmake 'if [ "$1" = --build ]; then exit 99; fi'
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# demo [INPUT]: runs the demo without a terminal (stdin from /dev/null), or, given INPUT,
# on a terminal (script(1) makes one) that types INPUT. Sets rc, out (stdout and stderr).
demo() {
  : > "$calls"
  set +e
  if (($#)); then
    out=$(cd "$tmp" && printf '%s\n' "$1" | PATH=$tmp/bin:$PATH script -qefc "bash repo/scripts/dev.sh demo" /dev/null 2>&1)
  else
    out=$(cd "$tmp" && PATH=$tmp/bin:$PATH bash repo/scripts/dev.sh demo < /dev/null 2>&1)
  fi
  rc=$?
  set -e
}

# 1. No database yet: only the demo's packages, its own build directory, the CLI alone.
demo
[[ $rc == 99 ]] || fail "without a database the demo should reach the build (exit 99), got $rc: $out"
install=$(grep '^apt-get install' "$calls" || true)
for p in build-essential cmake ninja-build libsqlitecpp-dev libexpected-dev libarchive-dev libdeflate-dev erlang-nox elixir; do
  [[ " $install " == *" $p "* ]] || fail "the demo should install $p: $install"
done
for p in googletest libgtest-dev libgmock-dev libbenchmark-dev erlang-src python3 clang libclang-rt-14-dev; do
  [[ " $install " != *" $p "* ]] || fail "the demo should not install $p (tests only): $install"
done
configure=$(grep '^cmake -S' "$calls" || true)
for o in "-B build-demo" -DCODESTORE_BUILD_TESTS=OFF -DCODESTORE_BUILD_BENCH=OFF; do
  [[ " $configure " == *" $o "* ]] || fail "the demo should configure with $o: $configure"
done
build=$(grep '^cmake --build' "$calls" || true)
[[ $build == "cmake --build build-demo -j "*" --target codestore" ]] ||
  fail "the demo should build the codestore target alone in build-demo: $build"

# 2. A database exists, no terminal: refused before anything is installed or built.
echo precious > "$tmp/repo/codestore.db"
demo
[[ $rc == 1 ]] || fail "with ./codestore.db and no terminal the demo should refuse (exit 1), got $rc"
[[ $out == *"codestore.db exists"* ]] || fail "the refusal should say that codestore.db exists: $out"
[[ ! -s $calls ]] || fail "the refusal should come before any work: $(cat "$calls")"
[[ $(cat "$tmp/repo/codestore.db") == precious ]] || fail "codestore.db was changed"

# 3. On a terminal: "n" (and just Enter) keeps it; "y" goes on to the build.
if command -v script > /dev/null; then
  for answer in n ""; do
    demo "$answer"
    [[ $rc == 1 && ! -s $calls ]] || fail "answering '$answer' should stop the demo (exit 1, no work), got $rc: $out"
  done
  demo y
  [[ $rc == 99 ]] || fail "answering y should go on to the build (exit 99), got $rc: $out"
  [[ $out == *"[y/N]"* ]] || fail "the question should show [y/N]: $out"
  [[ $(cat "$tmp/repo/codestore.db") == precious ]] || fail "codestore.db was changed before the demo ran"
else
  fail "script(1) not found: cannot check the question on a terminal"
fi
((failures == 0)) && echo "dev.sh demo: all checks passed"
exit $((failures > 0))
