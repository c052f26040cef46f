#!/usr/bin/env bash
# Issue 13's regression tests checked by mutation (each fix reverted, its tests must fail).
# Usage and exit status: tests/mutations/issue13.py.
set -euo pipefail
exec python3 "$(dirname "$0")/issue13.py" "$@"
