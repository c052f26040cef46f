#!/usr/bin/env bash
# A fuzz campaign over every target: `fuzz/run.sh SECONDS` builds the targets
# (`cargo +nightly fuzz build -O`), runs each for its share of SECONDS, one after the other
# on one core, and prints per target the cases run, crashes, timeouts and out-of-memory
# findings (libFuzzer's final stats). Exit status 1 on any finding, 2 if it cannot run.
#
# Seeds are read from fuzz/corpus/<target>/ (committed); what the campaign adds goes to
# fuzz/work/<target>/ (not committed). Findings are written to fuzz/artifacts/<target>/,
# logs to fuzz/logs/. TARGETS="a b" runs only those.
set -u
cd "$(dirname "$0")" || exit 2
total=${1:?usage: fuzz/run.sh SECONDS}
case $total in '' | *[!0-9]*) echo "SECONDS must be a whole number" >&2; exit 2 ;; esac
all="visits_csv catalog_toml needs_json needs_jsonl config model_folder journal_frames rpc_requests"
read -r -a targets <<<"${TARGETS:-$all}"
share=$((total / ${#targets[@]}))
[ "$share" -ge 1 ] || { echo "SECONDS must be at least ${#targets[@]}" >&2; exit 2; }

cargo +nightly fuzz build -O || exit 2
bin=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p logs
summary=logs/summary-$stamp.txt
findings=0
printf '%-16s %8s %12s %8s %9s %5s\n' target seconds runs crashes timeouts ooms | tee "$summary"
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    log=logs/$t-$stamp.log
    before=$(ls "artifacts/$t" | wc -l)
    start=$(date +%s)
    # -jobs=1: one worker process (its output goes to fuzz-0.log in the working directory,
    # so each target runs in its own); the seeds' directory is read, never written.
    (cd "work/$t" && ../../"$bin/$t" -jobs=1 -workers=1 -max_total_time="$share" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="../../artifacts/$t/" . ../../corpus/"$t" >/dev/null 2>&1)
    secs=$(($(date +%s) - start))
    mv "work/$t/fuzz-0.log" "$log" 2>/dev/null
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    new=$(ls -t "artifacts/$t" | head -n $(($(ls "artifacts/$t" | wc -l) - before)))
    crashes=$(grep -c -E '^(crash|leak|deadly)-' <<<"$new")
    timeouts=$(grep -c '^timeout-' <<<"$new")
    ooms=$(grep -c '^oom-' <<<"$new")
    # A run that ended without its final stats died in a way libFuzzer did not report.
    [ -n "$runs" ] || { runs="?"; crashes=$((crashes > 0 ? crashes : 1)); }
    found=$((crashes + timeouts + ooms))
    findings=$((findings + found))
    printf '%-16s %8s %12s %8s %9s %5s\n' "$t" "$secs" "$runs" "$crashes" "$timeouts" "$ooms" | tee -a "$summary"
    [ "$found" -eq 0 ] || sed -n 's/^/    /; /ERROR\|panicked\|SUMMARY\|artifact/p' "$log" | head -n 20
done
echo "commit $(git rev-parse --short HEAD 2>/dev/null), $(date -u +%FT%TZ); summary in fuzz/$summary"
[ "$findings" -eq 0 ] || { echo "$findings finding(s): see fuzz/artifacts/" >&2; exit 1; }
