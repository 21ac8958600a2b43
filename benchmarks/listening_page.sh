#!/usr/bin/env bash
# The committed listening page: the benchmark on the first mixtures of two committed sets (one
# in-domain, one shifted), written as one self-contained HTML page (one section per mixture,
# spectrograms on one dB scale per mixture, metrics beside each estimate), then loaded from
# disk by Debian's headless Chromium (no network), whose screenshot is committed beside it.
#
#   benchmarks/listening_page.sh            (from the repository root; about a minute)
#
# Needs the checkout's venv (.venv) and `apt-get install chromium`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "listening_page: needs chromium (apt-get install chromium)" >&2; exit 1; }
OUT=benchmarks/listening
mkdir -p "$OUT"
.venv/bin/priorsep benchmark --only-sets digits+drums-paper,shifted-drums+piano \
    --methods nmf,template,nmf-dict,oracle-irm,priorsep --limit 8 \
    --out "$OUT/results.md" --cache /tmp/priorsep-listening-cache --html "$OUT/index.html" --html-mixtures 2 >/dev/null
rm -f "$OUT/results.png"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-quic --window-size=1400,3600 \
    --screenshot="$OUT/screenshot.png" "file://$(pwd)/$OUT/index.html" 2>/dev/null
ls -la "$OUT"
