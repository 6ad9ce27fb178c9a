#!/usr/bin/env bash
# Build the refopt documentation site: HTML, then the doctests.
#
#   bash docs/build.sh [OUTDIR]        (default OUTDIR: docs/_build)
#
# Writes OUTDIR/html and OUTDIR/doctest. Both builds treat warnings as errors (-W, with
# --keep-going so one run reports all of them) and are nitpicky (-n: every reference must
# resolve). The HTML build executes the tutorials. Exits non-zero on any warning, any
# failing tutorial and any failing doctest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/_build}"
export MPLBACKEND=Agg
export PYTHONPATH="$(dirname "$here")${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
python -m sphinx -W --keep-going -n -q -b html "$here" "$out/html"
echo "docs: html built in $(( $(date +%s) - start ))s -> $out/html/index.html"
python -m sphinx -W --keep-going -n -q -b doctest "$here" "$out/doctest"
echo "docs: doctest passed ($(( $(date +%s) - start ))s in total)"
