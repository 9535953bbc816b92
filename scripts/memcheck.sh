#!/usr/bin/env bash
# The converter's tests (src/convert.rs unit tests, tests/convert_matrix.rs) under valgrind's
# memcheck. Fails on any invalid read or write, use of uninitialised memory or bad free, in our
# code or in the libgstaudio code it calls. Leaks are not checked (GLib and GStreamer keep their
# type system and registry until exit). About 6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

# The test binary cargo builds for the given target selection.
test_binary() {
    cargo test --no-run --message-format=json "$@" |
        grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n 1
}

lib=$(test_binary --lib)
matrix=$(test_binary --test convert_matrix)

# --partial-loads-ok=no: a SIMD load that runs past the end of a block is an invalid read, not
# silently "uninitialised" bytes further on. GLib and GStreamer initialisation report nothing
# with leak checking off, so no suppressions are needed.
memcheck=(valgrind --error-exitcode=1 --leak-check=no --partial-loads-ok=no --num-callers=30)

status=0
"${memcheck[@]}" "$lib" --test-threads=1 convert:: || status=1
"${memcheck[@]}" "$matrix" --test-threads=1 || status=1
if [ "$status" -ne 0 ]; then
    echo "memcheck: errors found (see the valgrind reports above)" >&2
else
    echo "memcheck: no errors"
fi
exit "$status"
