#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of the decoders that
# read untrusted bytes: keys, serialized proxies, encoded objects and the
# object server's control frames (targets in fuzz/fuzz_targets/).
#   bash scripts/fuzz.sh                 # 15 s per target (what CI runs)
#   bash scripts/fuzz.sh 3600            # an hour per target
#   bash scripts/fuzz.sh 600 codec key   # chosen targets
# Works on the stable toolchain: no sanitizer (-s none), debug assertions on
# (-a, so integer overflow panics). A panic, a hang (> 10 s per input) or an
# RSS above 2 GiB fails the run and leaves the input in fuzz/artifacts/<target>/;
# replay it with `cargo fuzz run -s none -a <target> <file>`. The corpus
# grows in fuzz/corpus/<target>/ (not committed) and seeds later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(control_frame key proxy codec)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --version 0.13.2
fi
echo "== cargo fuzz build (coverage instrumentation, debug assertions)" >&2
cargo fuzz build -s none -a
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    set +e
    cargo fuzz run -s none -a "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz: target $t FAILED (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    # e.g. "#1234567  DONE   cov: 546 ft: 2154 corp: 592/62Kb ... exec/s: 88231"
    echo "fuzz: $t ${secs}s: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)" >&2
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no failure" >&2
