#!/usr/bin/env bash
# A virtual environment for the competitor of `benchmarks/race.py`, with the PySpark its checkout pins.
#
#   bash benchmarks/competitor.sh CHECKOUT [VENV]
#
# CHECKOUT: a checkout of github.com/onkolahmet/pyspark-coding-challenge (its code is never copied
#           into this project; race.py puts CHECKOUT/src on the competitor's path at run time).
# VENV:     where the environment goes (default data/bench/competitor-venv).
#
# The PySpark version is the `pyspark==` pin of CHECKOUT/requirements.txt (4.0.0 at commit c7bc63c),
# or $COMPETITOR_PYSPARK when set. Only PySpark is installed: the pipeline imports nothing else.
# Idempotent: an environment that already has that version is left as it is.
set -euo pipefail

checkout=${1:?usage: competitor.sh CHECKOUT [VENV]}
venv=${2:-data/bench/competitor-venv}
python=${PYTHON:-python3}

[[ -f "$checkout/src/challenge/pipeline.py" ]] ||
  { echo "competitor.sh: $checkout has no src/challenge/pipeline.py: not a checkout of pyspark-coding-challenge" >&2; exit 2; }

version=${COMPETITOR_PYSPARK:-$(sed -n 's/^pyspark==\([0-9.]*\).*/\1/p' "$checkout/requirements.txt" | head -1)}
[[ -n "$version" ]] || { echo "competitor.sh: no pyspark== pin in $checkout/requirements.txt; set COMPETITOR_PYSPARK" >&2; exit 2; }

installed() {
  "$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true
}

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
if [[ "$(installed)" != "$version" ]]; then
  "$venv/bin/pip" install --quiet "pyspark==$version"
fi
[[ "$(installed)" == "$version" ]] || { echo "competitor.sh: pyspark $version did not install into $venv" >&2; exit 1; }
echo "$venv: pyspark $version"
