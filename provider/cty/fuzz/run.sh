#!/usr/bin/env bash
# Fuzzes hybrid-cty's decoders for a bounded time on the STABLE toolchain.
#
#   provider/cty/fuzz/run.sh [SECONDS]      (default 60)
#
# Installs cargo-fuzz into <repo>/.build/tools if missing, builds the
# `decode_msgpack` target and runs it; exits non-zero if libFuzzer finds a
# crash (the reproducer lands in provider/cty/fuzz/artifacts/decode_msgpack/).
#
# Why this works without nightly: cargo-fuzz passes a few unstable rustc
# flags; RUSTC_BOOTSTRAP=1 lets the stable compiler accept them. Sanitizers
# (-Zsanitizer) would need a nightly std, so we run with `--sanitizer none`:
# the target is safe Rust, and libFuzzer's coverage guidance still applies.
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: SECONDS must be a positive whole number, got '$secs'" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tools="$root/.build/tools"
cargo_fuzz_version="0.13.2"
export PATH="$tools/bin:$PATH"

if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    echo "run.sh: installing cargo-fuzz $cargo_fuzz_version into $tools" >&2
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version" --root "$tools"
fi

export RUSTC_BOOTSTRAP=1
cd "$here"

# Seed corpus: a few valid encodings so the fuzzer starts from real shapes.
# The first byte picks the type (see fuzz_targets/decode_msgpack.rs).
corpus="$here/corpus/decode_msgpack"
mkdir -p "$corpus"
seed() { printf "$2" >"$corpus/seed-$1"; }
seed null-string '\x00\xc0'
seed unknown-number '\x01\xd4\x00\x00'
seed refined-unknown '\x00\xc7\x03\x0c\x81\x01\xc3'
seed decimal '\x01\xa3\x30\x2e\x31'
seed float '\x01\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00'
seed dynamic '\x03\x92\xc4\x08"string"\xa2hi'
seed pool '\x08\x82\xa5start\xa1a\xa3end\xa1b'
seed json-pool '\x08{"start":"a","end":"b","used":1.5}'
seed json-dynamic '\x03{"value":["a"],"type":["list","string"]}'
seed typed '\x90["map","number"]\x81\xa1k\x05'

status=0
cargo fuzz run decode_msgpack \
    --sanitizer none \
    --target-dir "$root/.build/fuzz-target" \
    "$corpus" \
    -- -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 || status=$?

if [ "$status" -ne 0 ]; then
    echo "run.sh: fuzzing FAILED (exit $status); see $here/artifacts/decode_msgpack/" >&2
fi
exit "$status"
