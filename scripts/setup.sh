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
  # test speech and audio measurements
  flite sox
  # the Socket.IO server the gpttranslator tests run (tests/peers/gpttranslator_server.py):
  # python-socketio 5.7 / python-engineio 4.3 speak Engine.IO v4, Socket.IO v5
  python3 python3-socketio python3-engineio python3-aiohttp
  # recipes/: textoverlay, x264enc, avenc_aac/avdec_h264, and the Rust closed-caption plugin's build
  gstreamer1.0-x gstreamer1.0-plugins-ugly gstreamer1.0-libav libpango1.0-dev libcairo2-dev
  # eval/: the browser that checks index.html, and pip to fetch the LibriVox evaluation set
  chromium python3-pip
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

# eval/: the five LibriVox utterances (human read speech) of the PyPI pocketsphinx 5.1.1 sdist, fetched
# once with pip into a cache outside the repository and checked by sha256; eval/sets/librivox holds
# their time-aligned references.
librivox="${XDG_CACHE_HOME:-$HOME/.cache}/realtimetranslate/librivox"
librivox_sums="b0557cf95c974d930577e58e46b7f068c432a6e3afcc286563d88922b2a5315c  sense_and_sensibility_01_austen_64kb-0870.wav
fbec491ef00ee734a67f0ee318e98c51c157b479e1629ff4f4426861ecac0414  sense_and_sensibility_01_austen_64kb-0880.wav
5793ffbdee55fb8bfd284943a6866864c832d9d4accf2661cabd39915c84ee10  sense_and_sensibility_01_austen_64kb-0890.wav
40882414ef4cc51f3ff7a63bad0c8c87e7f595ffeb8209fbf756c8ebc5c28a59  sense_and_sensibility_01_austen_64kb-0920.wav
954adbf0b56ac8a148cbe77b39ca18d76b5f2a1e1f405565bd786ce3e68a68b7  sense_and_sensibility_01_austen_64kb-0930.wav"
if ! (cd "$librivox" 2>/dev/null && echo "$librivox_sums" | sha256sum --check --quiet --status); then
  echo "setup: fetching the LibriVox evaluation utterances into $librivox" >&2
  download=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary pocketsphinx pocketsphinx==5.1.1 -d "$download"
  echo "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355  $download/pocketsphinx-5.1.1.tar.gz" \
    | sha256sum --check --quiet
  mkdir -p "$librivox"
  tar -xzf "$download/pocketsphinx-5.1.1.tar.gz" -C "$librivox" --strip-components=4 --wildcards \
    'pocketsphinx-5.1.1/test/data/librivox/*.wav'
  rm -rf "$download"
  (cd "$librivox" && echo "$librivox_sums" | sha256sum --check --quiet)
fi
