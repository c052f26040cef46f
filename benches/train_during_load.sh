#!/usr/bin/env bash
# Estimate latency while TrainModel trains on about one million visit rows, against the
# same harness's latency outside the training (same run, same server):
#
#   benches/train_during_load.sh [WORK_DIR]
#
# Builds the release binary, simulates the log (RECIPIENTS × WEEKS, default 5000 × 12 ≈ 1 M
# rows), serves the shipped model in process with the log's folder as data directory, and
# runs `ramtid load --train-during catalog.toml visits.csv` for LOAD_SECONDS (default 40) with
# CONCURRENCY calls in flight (default 8). The last line gives both p99s and their ratio.
set -euo pipefail

cd "$(dirname "$0")/.."
RECIPIENTS=${RECIPIENTS:-5000}
WEEKS=${WEEKS:-12}
LOAD_SECONDS=${LOAD_SECONDS:-40}
CONCURRENCY=${CONCURRENCY:-8}
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/ramtid-train-load.XXXXXX")}
mkdir -p "$WORK"

cargo build --release --quiet --bin ramtid
BIN=$PWD/target/release/ramtid

if [[ ! -f "$WORK/data/visits.csv" ]]; then
    "$BIN" simulate --recipients "$RECIPIENTS" --weeks "$WEEKS" --holdout 10 --seed 1 \
        --out "$WORK/data" >&2
fi
rm -rf "$WORK/models" && cp -r models "$WORK/models"
cat >"$WORK/ramtid.toml" <<TOML
[models]
dir = "$WORK/models"
[data]
dir = "$WORK/data"
[history]
url = ""
TOML
"$BIN" load --config "$WORK/ramtid.toml" --concurrency "$CONCURRENCY" \
    --seconds "$LOAD_SECONDS" --train-during catalog.toml visits.csv
