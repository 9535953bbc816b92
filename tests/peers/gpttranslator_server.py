#!/usr/bin/env python3
"""A stand-in for the GPT Translator realtime API, built on python-socketio (a Socket.IO server
we did not write), so the element's own Engine.IO / Socket.IO framing is checked against a
reference implementation.

It plays the provider's event sequence (docs/protocol/gpttranslator.md): it checks `apiKey`,
answers `translation_start` with the statuses `session_initializing`, `translation_ready`,
`ready_for_audio`, records any audio that arrives before that, and answers each utterance
(found by energy in the received 24 kHz PCM16) with `input_transcript`, `output_transcript` and
a 440 Hz tone as long as the utterance in `output_audio`. `translation_stop` flushes and answers
`translation_closed`.

Modes (--mode): normal, translation_error (a `translation_error` before each answer),
insufficient_tokens (after ~1 s of audio: `insufficient_tokens`, then the server drops the
client), binary (`output_audio` deltas as binary attachments), freeze (after `ready_for_audio`
the server stops answering anything, pings included).

Prints `PORT <n>` once listening on 127.0.0.1, and keeps a JSON record of what it received in
--record (rewritten atomically after every change) for the tests to read.
"""

import argparse
import array
import asyncio
import base64
import json
import math
import os
import sys
import time
import urllib.parse

import socketio
from aiohttp import web

NAMESPACE = "/api/realtime-translator"
RATE = 24000
FRAME = 480  # 20 ms
SPEECH_RMS = 300.0
END_SILENCE_FRAMES = 20  # 400 ms of silence ends an utterance
DELTA_SAMPLES = 4800  # output audio in 200 ms deltas


class RecordingServer(socketio.AsyncServer):
    """Keeps every Socket.IO packet the client sent (as Engine.IO hands it over, without the
    leading `4`), audio chunks summarised, in arrival order."""

    async def _handle_eio_message(self, eio_sid, data):  # the library's dispatch hook
        if isinstance(data, str):
            text = data if '"audio_chunk"' not in data[:60] else data[:40] + "...audio_chunk"
            PEER.record["packets"].append(text[:200])
        else:
            PEER.record["packets"].append("<binary %d bytes>" % len(data))
        await super()._handle_eio_message(eio_sid, data)


class Peer:
    def __init__(self, args):
        self.args = args
        self.record = {"connections": [], "packets": []}
        self.sessions = {}
        self.started = time.monotonic()

    def now(self):
        return round(time.monotonic() - self.started, 3)

    def save(self):
        path = self.args.record
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.record, f, indent=1)
        os.replace(tmp, path)


class Session:
    """One client in the namespace: its record entry and the utterance detector."""

    def __init__(self, entry):
        self.entry = entry
        self.ready = False
        self.samples = 0
        self.speech_start = None
        self.last_speech_end = None
        self.silent_frames = 0
        self.pending = array.array("h")
        self.utterances = 0
        self.tokens_checked = False
        self.queue = asyncio.Queue()

    def event(self, name, **fields):
        self.entry["events"].append(dict(name=name, t=PEER.now(), **fields))


PEER = None
sio = None


def tone(samples):
    return array.array(
        "h", (int(8000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(samples))
    )


async def emit(sid, name, data=None):
    await sio.emit(name, data, to=sid, namespace=NAMESPACE)


async def answer_utterance(sid, session, duration_samples):
    session.utterances += 1
    n = session.utterances
    ms = round(duration_samples * 1000 / RATE)
    session.event("answered", utterance=n, ms=ms)
    if PEER.args.mode == "translation_error":
        await emit(sid, "translation_error", {"message": "model hiccup on utterance %d" % n})
    await emit(sid, "input_transcript", {"delta": "utterance %d " % n})
    await emit(sid, "input_transcript", {"delta": "of %d ms" % ms})
    await emit(sid, "output_transcript", {"delta": "Frase %d " % n})
    await emit(sid, "output_transcript", {"delta": "de %d ms." % ms})
    pcm = tone(duration_samples)
    for start in range(0, len(pcm), DELTA_SAMPLES):
        chunk = pcm[start : start + DELTA_SAMPLES].tobytes()
        if PEER.args.mode == "binary":
            await emit(sid, "output_audio", {"delta": chunk})
        else:
            await emit(sid, "output_audio", {"delta": base64.b64encode(chunk).decode()})
    PEER.save()


async def connect(sid, environ, auth=None):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    key_ok = query.get("apiKey", [None])[0] == PEER.args.key
    entry = {
        "sid": sid,
        "t": PEER.now(),
        "key_ok": key_ok,
        "eio": query.get("EIO", [None])[0],
        "transport": query.get("transport", [None])[0],
        "events": [],
        "samples": 0,
        "chunk_sizes": [],
        "audio_before_ready": 0,
        "disconnected_at": None,
    }
    PEER.record["connections"].append(entry)
    PEER.save()
    if not key_ok:
        raise socketio.exceptions.ConnectionRefusedError("Invalid API key")
    session = Session(entry)
    PEER.sessions[sid] = session
    sio.start_background_task(work, sid, session)


async def disconnect(sid):
    session = PEER.sessions.pop(sid, None)
    if session:
        session.entry["disconnected_at"] = PEER.now()
        PEER.save()


async def translation_start(sid, data=None):
    session = PEER.sessions[sid]
    session.event("translation_start", data=data)
    PEER.save()
    sio.start_background_task(announce_readiness, sid, session)


async def announce_readiness(sid, session):
    # The statuses come with delays, as a real service sets up its model meanwhile: audio the
    # client queued during that time must arrive afterwards, none of it lost.
    for status in ("session_initializing", "translation_ready", "ready_for_audio"):
        await asyncio.sleep(0.3)
        if status == "ready_for_audio":
            session.ready = True  # before the emit: the client may answer at once
        await emit(sid, "status", {"status": status})
        session.event("status", status=status)
    PEER.save()
    if PEER.args.mode == "freeze":
        await asyncio.sleep(0.2)
        time.sleep(30)  # blocks the whole server: no pings, no answers


def audio_chunk(sid, data=None):
    """Synchronous, so chunks are taken in arrival order; the worker does the rest."""
    session = PEER.sessions.get(sid)
    if session is None:
        return
    pcm = array.array("h")
    pcm.frombytes(base64.b64decode(data["audioData"]))
    if not session.ready:
        session.entry["audio_before_ready"] += len(pcm)
    session.entry["samples"] += len(pcm)
    session.entry["chunk_sizes"].append(len(pcm))
    session.queue.put_nowait(pcm)


def translation_stop(sid, data=None):
    session = PEER.sessions.get(sid)
    if session is None:
        return
    session.event("translation_stop")
    session.queue.put_nowait(None)


async def work(sid, session):
    """Consumes the session's audio in order; `None` is the stop, after all audio before it."""
    while True:
        pcm = await session.queue.get()
        if pcm is None:
            if session.speech_start is not None:
                await finish_utterance(sid, session)
            await emit(sid, "translation_closed")
            session.event("translation_closed")
            PEER.save()
            return
        session.samples += len(pcm)
        session.pending.extend(pcm)
        while len(session.pending) >= FRAME:
            frame = session.pending[:FRAME]
            del session.pending[:FRAME]
            await detect(sid, session, frame)
        if (
            PEER.args.mode == "insufficient_tokens"
            and not session.tokens_checked
            and session.samples >= RATE
        ):
            session.tokens_checked = True
            await emit(
                sid, "insufficient_tokens", {"message": "Insufficient tokens", "remainingTokens": 0}
            )
            session.event("insufficient_tokens")
            PEER.save()
            await sio.disconnect(sid, namespace=NAMESPACE)
            return


async def detect(sid, session, frame):
    """Utterance boundaries by energy, in 20 ms frames of the received stream."""
    position = session.samples - len(session.pending) - FRAME
    rms = math.sqrt(sum(s * s for s in frame) / len(frame))
    if rms > SPEECH_RMS:
        if session.speech_start is None:
            session.speech_start = position
        session.last_speech_end = position + FRAME
        session.silent_frames = 0
    elif session.speech_start is not None:
        session.silent_frames += 1
        if session.silent_frames >= END_SILENCE_FRAMES:
            await finish_utterance(sid, session)


async def finish_utterance(sid, session):
    duration = session.last_speech_end - session.speech_start
    session.speech_start = None
    session.silent_frames = 0
    await answer_utterance(sid, session, duration)


async def main():
    global PEER, sio
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--mode", default="normal")
    parser.add_argument("--ping-interval", type=float, default=1.0)
    parser.add_argument("--ping-timeout", type=float, default=1.0)
    args = parser.parse_args()
    PEER = Peer(args)
    PEER.record["mode"] = args.mode
    PEER.record["library"] = "python-socketio %s" % library_version()
    PEER.save()
    sio = RecordingServer(
        async_mode="aiohttp",
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        cors_allowed_origins="*",
    )
    for name, handler in [
        ("connect", connect),
        ("disconnect", disconnect),
        ("translation_start", translation_start),
        ("audio_chunk", audio_chunk),
        ("translation_stop", translation_stop),
    ]:
        sio.on(name, handler, namespace=NAMESPACE)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    # Ends when the test closes stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


def library_version():
    try:
        from importlib.metadata import version

        return version("python-socketio")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    asyncio.run(main())
