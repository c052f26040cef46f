#!/usr/bin/env bash
# Times `ramtid follow-up` on about one million visit rows and 50 000 recipients: wall time
# and peak memory (the budget: 10 s and 512 MB).
#
#   benches/followup_1m.sh [WORK_DIR]     (default: a fresh folder under ${TMPDIR:-/tmp})
#
# Builds the release binary, simulates a random world of RECIPIENTS × WEEKS (default
# 50 000 × 2 ≈ 1.4 M rows), trains a model on a smaller log of the same world (the
# follow-up's cost does not depend on how the model was trained), writes an order for every
# logged recipient and a population file, and runs the follow-up RUNS times (default 3)
# under GNU time (/usr/bin/time; Debian: apt-get install time).
set -euo pipefail

cd "$(dirname "$0")/.."
RECIPIENTS=${RECIPIENTS:-50000}
WEEKS=${WEEKS:-2}
SEED=${SEED:-5}
RUNS=${RUNS:-3}
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/ramtid-followup-1m.XXXXXX")}
mkdir -p "$WORK"

if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time (GNU time) is missing; install it with: apt-get install time" >&2
    exit 2
fi

echo "== building the release binary" >&2
cargo build --release --quiet --bin ramtid
BIN=target/release/ramtid
export RAMTID_LOG=${RAMTID_LOG:-error}

echo "== simulating $RECIPIENTS recipients × $WEEKS weeks (seed $SEED) into $WORK/sim" >&2
"$BIN" simulate --world random --seed "$SEED" --recipients "$RECIPIENTS" --weeks "$WEEKS" \
    --holdout 10 --out "$WORK/sim" >/dev/null
echo "== training on 1 500 recipients × 8 weeks of the same world" >&2
"$BIN" simulate --world random --seed "$SEED" --recipients 1500 --weeks 8 --holdout 10 \
    --out "$WORK/train" >/dev/null
rm -rf "$WORK/models"
"$BIN" train --catalog "$WORK/train/catalog.toml" --visits "$WORK/train/visits.csv" \
    --out "$WORK/models" --name follow --folds 3 --lambdas 10,100 >/dev/null 2>&1
ROWS=$(($(wc -l <"$WORK/sim/visits.csv") - 1))

# An order for every logged recipient; the population of a town of about 100 000.
python3 - "$WORK" <<'PY'
import csv, sys
work = sys.argv[1]
ids = sorted({r["recipient_id"] for r in csv.DictReader(open(f"{work}/sim/visits.csv"))})
with open(f"{work}/orders.csv", "w") as f:
    f.write("recipient_id,weekly_min\n")
    for i, rid in enumerate(ids):
        f.write(f"{rid},{60 + (i * 37) % 400}\n")
with open(f"{work}/population.csv", "w") as f:
    f.write("age_band,inhabitants\n0-64,78000\n65-79,15000\n80+,7000\n")
print(f"{len(ids)} recipients ordered", file=sys.stderr)
PY

for i in $(seq 1 "$RUNS"); do
    /usr/bin/time -v -o "$WORK/time-$i.txt" \
        "$BIN" follow-up --model "$WORK/models/follow" --orders "$WORK/orders.csv" \
        --visits "$WORK/sim/visits.csv" --population "$WORK/population.csv" \
        --out "$WORK/out" 2>"$WORK/followup-$i.log"
    WALL=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time-$i.txt")
    RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$WORK/time-$i.txt")
    echo "run $i: wall $WALL, max RSS $((RSS_KB / 1024)) MB"
done
echo "rows: $ROWS; load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo "details: $WORK/time-*.txt, $WORK/followup-*.log, $WORK/out"
