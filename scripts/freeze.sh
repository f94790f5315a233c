#!/usr/bin/env bash
# Write constraints.txt: the exact versions of the environment the book's chapters are executed in (pip freeze of
# .venv), which `make setup` (scripts/setup.sh) and Binder's environment.yml install. Run after a deliberate
# upgrade, re-execute the chapters, commit both. The package itself, the weight-carrying packages (pinned in
# pyproject.toml, installed without dependencies) and torch's local "+cpu" label are left out.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
mapfile -t WEIGHTS < <("$VENV/bin/python" -m compendium.launch weight-packages)
{
  echo "# The environment the book's chapters are executed in: written by scripts/freeze.sh (pip freeze of the virtual environment),"
  echo "# installed by scripts/setup.sh (pip -c) and pinned in Binder's environment.yml. Python 3.11, CPU torch."
  "$VENV/bin/pip" freeze --exclude-editable 2>/dev/null \
    | grep -v '^#' \
    | grep -v -i -F -x -f <(printf '%s\n' "${WEIGHTS[@]}") \
    | sed -E 's/^(torch==[^+]+)\+cpu$/\1/' \
    | LC_ALL=C sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
