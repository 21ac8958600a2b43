#!/usr/bin/env bash
# Install what the dataset builders need, then build the digits, drums and piano datasets.
#
#   scripts/build_data.sh OUT [ARGS...]
#
# OUT is best kept outside the checkout (e.g. ~/priorsep-data): the full build writes
# about 350 MB to OUT/{digits,drums,piano}/ and a reusable 75 MB cache to OUT/.cache.
# Needs root for apt-get (Debian/Ubuntu) and the checkout's venv in .venv. Set
# SKIP_INSTALL=1 to build with what is installed. Extra arguments after OUT go to
# `priorsep data build` (e.g. --n-train 100 --n-test 20 --seed 1).
# The full build (6000 train + 500 test clips per class) took 14 minutes on one core
# (digits 1.5, drums 0.7, piano 11.5), then --verify re-hashes every clip.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUT [--n-train N --n-test N --seed S]" >&2
    exit 2
fi
OUT="$(realpath -m "$1")"  # before the cd, so a relative OUT is relative to the caller
shift
cd "$(dirname "$0")/.."

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    CI=1 bash scripts/install_data_tools.sh  # CI=1: fail rather than warn without root
    .venv/bin/pip install -e ".[data]"
fi

nice -n 10 .venv/bin/priorsep --threads 1 data build all --out "$OUT" "$@"
nice -n 10 .venv/bin/priorsep --threads 1 data verify all --out "$OUT"
