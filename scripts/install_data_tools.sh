#!/usr/bin/env bash
# Install the Debian packages the dataset builders need (TTS engines, drum kits, fluidsynth
# and its General MIDI soundfont). Needs root, or sudo.
#
# Without root or sudo it only warns, so that the README's test command still runs for a
# user without them (the dataset-builder tests then skip); under CI (CI set) it fails.
set -euo pipefail
PACKAGES="flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts espeak-ng
hydrogen-drumkits hydrogen-data fluidsynth fluid-soundfont-gm"
missing=$(for p in $PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    echo "install_data_tools: not root and no sudo; the dataset builders need:" $missing >&2
    [ -n "${CI:-}" ] && exit 1
    echo "install_data_tools: continuing; the dataset-builder tests will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
