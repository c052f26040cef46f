#!/usr/bin/env bash
# The recipe of the model shipped in models/: a simulated municipality (synthetic data, see
# SIMULATION.md), trained with the default method, evaluated on its held-out recipients.
# Re-running it reproduces the same data; the model gets the next version number.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-$(mktemp -d)}
cargo build --release --quiet
bin=target/release/ramtid
$bin simulate --municipality nordstad --seed 1 --recipients 5000 --weeks 8 --holdout 1000 --out "$work/nordstad"
$bin train --catalog "$work/nordstad/catalog.toml" --visits "$work/nordstad/visits.csv" \
  --out models --name nordstad
if $bin evaluate --help >/dev/null 2>&1; then
  $bin evaluate --model models/nordstad --needs "$work/nordstad/needs.jsonl" \
    --truth "$work/nordstad/truth.csv" --visits "$work/nordstad/heldout_visits.csv" \
    --out "$work/nordstad/report" --record
  echo "evaluation report: $work/nordstad/report/report.html"
fi
