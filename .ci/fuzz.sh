#!/usr/bin/env bash
# Build every fuzz target of fuzz/ and run each briefly; print the number of
# runs per target. Exit non-zero if a target fails to build or finds a crash.
#
#   .ci/fuzz.sh                 # 20 s per target
#   FUZZ_SECONDS=300 .ci/fuzz.sh
#   .ci/fuzz.sh datagram names  # only these targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the
# sanitizer flags need RUSTC_BOOTSTRAP=1, which this script sets.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz missing (cargo install cargo-fuzz)" >&2
    exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
for t in "${targets[@]}"; do cargo fuzz build -O "$t"; done
status=0
total=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    # Fuzz into a scratch copy so the committed seed corpus stays small.
    work="$(mktemp -d)"
    cp -r "corpus/$t/." "$work/" 2>/dev/null || true
    if cargo fuzz run -O "$t" "$work" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1)"
        echo "fuzz: $t: ${runs:-?} runs in ${secs}s, no finding"
        total=$((total + ${runs:-0}))
    else
        echo "fuzz: $t: FAILED (finding or build error), log follows" >&2
        tail -40 "$log" >&2
        status=1
    fi
    rm -rf "$log" "$work"
done
echo "fuzz: total $total runs without a finding across ${#targets[@]} target(s)"
exit $status
