#!/usr/bin/env bash
# The main job: translates real English speech into Spanish with the offline engine (no account,
# no network), writing the translated speech (WAV) and subtitles (SRT, WebVTT) and printing the text.
#   scripts/demo.sh [INPUT_AUDIO [LANGUAGE]]   (default: English sentences spoken by flite, into es;
#   LANGUAGE: es ca gl eo from English, en from any language Whisper knows)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --example translate_file

input=${1:-}
language=${2:-es}
if [ -z "$input" ]; then
  mkdir -p demo
  input=demo/english.wav
  parts=()
  i=0
  while read -r sentence; do
    i=$((i + 1))
    flite -voice slt -t "$sentence" -o "demo/part$i.raw.wav"
    sox "demo/part$i.raw.wav" "demo/part$i.wav" pad 0.6 0.6
    parts+=("demo/part$i.wav")
  done <<'TEXT'
The weather today is sunny and warm.
I would like a cup of coffee.
The children are playing in the garden.
We are going to the beach tomorrow.
Thank you very much.
TEXT
  sox "${parts[@]}" "$input" pad 0 1.5
  rm -f demo/part*.wav
  echo "demo: made $input (English speech from flite)"
fi

target/release/examples/translate_file "$input" --backend local --language "$language" --transcript
