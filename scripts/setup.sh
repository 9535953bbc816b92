#!/usr/bin/env bash
# Installs the Debian packages the build, the offline engine and the tests need (only the missing
# ones), so a fresh Debian 12 machine can build and run everything. Needs root or sudo for apt-get.
set -euo pipefail

packages=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  # offline engine: recognition, translation, synthesis
  pocketsphinx pocketsphinx-en-us libpocketsphinx-dev apertium apertium-eng-spa espeak-ng
  # offline engine: English → Catalan, Galician, Esperanto; the venv of Whisper and Piper
  apertium-eng-cat apertium-en-gl apertium-eo-en python3-venv
  # test speech and audio measurements
  flite sox
  # the Socket.IO server the gpttranslator tests run (tests/peers/gpttranslator_server.py):
  # python-socketio 5.7 / python-engineio 4.3 speak Engine.IO v4, Socket.IO v5
  python3 python3-socketio python3-engineio python3-aiohttp
  # recipes/: textoverlay, x264enc, avenc_aac/avdec_h264, and the Rust closed-caption plugin's build
  gstreamer1.0-x gstreamer1.0-plugins-ugly gstreamer1.0-libav libpango1.0-dev libcairo2-dev
  # eval/: the browser that checks index.html, and pip to fetch the LibriVox evaluation set
  chromium python3-pip
  # tests/load_balancer.rs: translation servers behind a standard WebSocket load balancer
  haproxy
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo (Rust 1.92 or newer) is required" >&2; exit 1; }

# Whisper and Piper for the offline engine (a venv and checked model files outside the repository),
# and the five LibriVox utterances (human read speech) of the PyPI pocketsphinx 5.1.1 sdist that the
# offline tests, the benchmarks and eval/ (eval/sets/librivox holds their references) use.
"$(dirname "$0")/setup-offline-models.sh"
