#!/usr/bin/env bash
# Times `ramtid catalog design` on about one million simulated visit rows: wall time and
# peak memory of the design alone (simulating and training come first, untimed).
#
#   benches/catalog_design_1m.sh [WORK_DIR]   (default: a fresh folder under ${TMPDIR:-/tmp})
#
# Builds the release binary first. Set RECIPIENTS / WEEKS to change the size
# (5000 × 12 weeks ≈ 1.03 M rows for nordstad, 30 codes), CLUSTERS for K. Needs GNU time
# at /usr/bin/time (Debian: apt-get install time).
set -euo pipefail

cd "$(dirname "$0")/.."
RECIPIENTS=${RECIPIENTS:-5000}
WEEKS=${WEEKS:-12}
SEED=${SEED:-1}
CLUSTERS=${CLUSTERS:-12}
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/ramtid-design-1m.XXXXXX")}
mkdir -p "$WORK"

if [[ ! -x /usr/bin/time ]]; then
    echo "error: /usr/bin/time (GNU time) is missing; install it with: apt-get install time" >&2
    exit 2
fi

echo "== building the release binary" >&2
cargo build --release --quiet --bin ramtid
BIN=target/release/ramtid

if [[ ! -f "$WORK/sim/visits.csv" ]]; then
    echo "== simulating $RECIPIENTS recipients × $WEEKS weeks into $WORK/sim" >&2
    "$BIN" simulate --recipients "$RECIPIENTS" --weeks "$WEEKS" --holdout 10 --seed "$SEED" \
        --out "$WORK/sim" >&2
fi
ROWS=$(($(wc -l <"$WORK/sim/visits.csv") - 1))
MB=$(du -m "$WORK/sim/visits.csv" | cut -f1)
echo "visits.csv: $ROWS rows, $MB MB" >&2

if [[ ! -d "$WORK/models/design1m" ]]; then
    echo "== training (untimed)" >&2
    "$BIN" train --catalog "$WORK/sim/catalog.toml" --visits "$WORK/sim/visits.csv" \
        --out "$WORK/models" --name design1m >&2
fi

echo "== catalog design, $CLUSTERS codes (timed)" >&2
rm -rf "$WORK/design"
/usr/bin/time -v -o "$WORK/time.txt" \
    "$BIN" catalog design --model "$WORK/models/design1m" --visits "$WORK/sim/visits.csv" \
    --catalog "$WORK/sim/catalog.toml" --clusters "$CLUSTERS" --seed "$SEED" \
    --out "$WORK/design" 2>&1 | tee "$WORK/design.log" >&2

WALL=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
CPU=$(sed -n 's/^[[:space:]]*Percent of CPU this job got: //p' "$WORK/time.txt")
echo
echo "rows:        $ROWS ($MB MB)"
echo "wall time:   $WALL (CPU $CPU, $(nproc) cores)"
echo "max RSS:     $((RSS_KB / 1024)) MB"
echo "design:      $WORK/design (catalog.toml, design.json, report.html)"
echo "details:     $WORK/time.txt, $WORK/design.log"
