#!/usr/bin/env bash
# The README's test command (make test): unit tests, every source notebook executed under nbval
# with its ci defaults, the canary executed notebooks checked cell by cell, a papermill smoke run,
# a strict book build, and every page of the built book opened in headless Chromium (tests/book).
# The data layer reads ../shared/data unless COMPENDIUM_DATA says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
BIN="$VENV/bin"
export COMPENDIUM_DATA=${COMPENDIUM_DATA:-$(cd .. && pwd)/shared/data}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
export PYTHONHASHSEED=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

echo "== unit tests"
"$BIN/pytest" -q -n 2 --ignore=tests/book tests

echo "== notebooks (ci profile) under nbval"
"$BIN/pytest" -q -n 2 --dist loadscope --nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
  -p no:cacheprovider notebooks

echo "== canary: executed book notebooks re-run and compared cell by cell"
mapfile -t CANARIES < <(cat book/canaries.txt 2>/dev/null | grep -v '^#' | sed '/^$/d')
if [ ${#CANARIES[@]} -gt 0 ]; then
  "$BIN/pytest" -q --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider \
    --nbval-sanitize-with tests/nbval_sanitize.cfg "${CANARIES[@]}"
fi

echo "== papermill smoke run into a scratch book, then the strict book build"
"$BIN/compendium" run affectgpt --profile ci --out "${TMPDIR:-/tmp}/compendium-smoke" --quiet --force
bash scripts/fetch_mathjax.sh
"$BIN/compendium" build --no-run --strict

echo "== chapters whose code or data changed since they were executed (stale)"
"$BIN/compendium" status --book

echo "== the built book in headless Chromium: every page, at 1400 px"
"$BIN/pytest" -q -p no:cacheprovider tests/book
