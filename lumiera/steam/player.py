"""The Player subsystem (Steam): calculation streams towards outputs.

A stream is a frame range of the session's timeline towards one output, in a
mode (see :mod:`lumiera.vault.stream`):

- ``render``: every frame in order into a *file* (the Vault's encoder; H.264
  MP4 by default, ``ffv1`` for lossless masters). The Engine computes the
  frames into a block ring ``render-<W>x<H>`` (created on first use), this
  process reads them in order and encodes them; the file is written under a
  temporary name and renamed only when it is complete (:class:`Encoder`).
  A timeline with sound (any clip whose media has audio) is rendered with a
  sound stream: the Engine mixes each frame's samples into a second block
  ring ``render-audio-<M>mb`` (layout: :mod:`lumiera.shm.layout`, AUDIO
  RINGS), and this process takes picture n, then sound n, and encodes both
  (AAC in MP4, FLAC in MKV, PCM in MOV), so they are in sync by construction.
- ``playback``: real time into the *viewer ring* ``viewer-<W>x<H>`` (drop
  policy, yuv420p), which viewers read (the GUI, ``tools/viewer.py``). Its size
  is the output's scaled down to fit ``[gui] preview_width/height``: the GUI
  encodes each frame as JPEG straight from its planes, with no scaling or
  conversion of its own. Late frames are dropped and counted by the Engine.
  A sounding timeline plays its sound too: the Engine puts frame n's sound
  into the drop ring ``viewer-audio-<M>mb`` with pts n at frame n's due time
  (on the stream's one clock; a late picture is dropped, its sound never is),
  and this process reads it in order into the ``[audio] sink`` (a WAV file, a
  sound device, or none: :mod:`lumiera.steam.soundsink`); viewers may read it
  too. ``streams`` says the sound's state (``sound``: sink, sent, dropped).

Commands: ``render``, ``play``, ``pause``, ``seek``, ``stop``, ``streams``.
Progress is published on ``stats.player`` every ``engine.stats_interval``
(frame, fps, drops, ETA), and the end of a render on ``player.render.done``
(or ``player.render.failed`` with the reason).

How the work is split, and why: the Player owns the stream (its range, mode,
output, and control); the Engine splits it into jobs (prefetch reads and one
render job per frame, with deadlines: :mod:`lumiera.vault.stream`). Jobs are
closures over the Engine's in-process state (decoders, cache), so sending each
one over the bus would cost a round trip per frame and carry nothing useful.

The Player talks to the session, the engine and the supervisor as a client of
the bus (its own connections, from its own threads): the timeline comes from
``session timeline`` when a stream starts, so a stream renders the session as
it was then (a render may bring its own: a farm task's contract).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from lumiera.actors import Actor, ActorContext, command
from lumiera.bus.client import ControlClient
from lumiera.bus.timeline import Timeline, rate_of, rate_text
from lumiera.bus.topics import EngineRenderEnded, PlayerRenderEnded, StatsPlayer
from lumiera.errors import (
    BadArguments,
    Conflict,
    NotFound,
    Unavailable,
)
from lumiera.runtime_dir import RuntimeDir
from lumiera.steam.playout import (
    EngineWatcher,
    PlayerRings,
    PlayerStream,
    parse_range,
    preview,
)
from lumiera.steam.renderloop import FRAME_WAIT_S, encode
from lumiera.steam.soundsink import SinkConfig, SoundOut
from lumiera.vault.codecs import Encoder
from lumiera.vault.codecspec import Registry
from lumiera.vault.feeds import timeline_sounds

KEEP_ENDED = 64  # ended streams (and engine stream ends) kept
SOUND_END_WAIT_S = 1.0  # a stop waits this long for the sound's thread to read what is left


class PlayerActor(Actor):
    name = "player"
    summary = "calculation streams: render a timeline to a file, play it into the viewer ring"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.codecs = Registry()
        self.streams: dict[str, PlayerStream] = {}
        cfg = ctx.config
        self.rings = PlayerRings(lambda: self.client, cfg.get_int("engine.workers"))
        self.sound = SinkConfig(
            cfg.get_str("audio.sink"),
            cfg.get_str("audio.wav_path"),
            cfg.get_str("audio.device"),
            cfg.get_float("audio.latency"),
        )
        self._ids = 0
        self._threads: list[threading.Thread] = []
        self.engine_ended: dict[str, EngineRenderEnded] = {}  # engine stream id -> its end
        self._stopping = threading.Event()
        self._monitor = EngineWatcher(self._engine_stream_ended)
        self.tick_interval = ctx.config.get_float("engine.stats_interval")
        self.preview = (
            ctx.config.get_int("gui.preview_width"),
            ctx.config.get_int("gui.preview_height"),
        )
        # The bus connections, from on_start on (None before; the properties below say so).
        self._rd: RuntimeDir | None = None
        self._client: ControlClient | None = None

    @property
    def rd(self) -> RuntimeDir:
        if self._rd is None:
            raise Unavailable("the player has not started")
        return self._rd

    @property
    def client(self) -> ControlClient:
        """The main thread's connection (render threads make their own)."""
        if self._client is None:
            raise Unavailable("the player has not started")
        return self._client

    def on_start(self) -> None:
        assert self.ctx.runtime_dir is not None
        self._rd = RuntimeDir(Path(self.ctx.runtime_dir), self.ctx.instance, False)
        # The main thread's requests (session timeline, engine render, stop_stream) are
        # answered in milliseconds; the bound keeps a slow answer from holding the main
        # loop past the heartbeat watchdog (the request fails instead).
        watchdog = self.ctx.config.get_float("appstate.watchdog_timeout")
        self._client = ControlClient(self._rd, timeout=watchdog / 2)
        self._monitor.start(self._rd)

    def on_stop(self) -> None:
        if self._client is None:  # stopped before it was started
            return
        self._stopping.set()
        self._monitor.stop()
        for stream in self.streams.values():
            stream.cancel.set()
            if stream.sound is not None:
                stream.sound.finish(0)  # its thread reads what is left and closes its sink
        # A render's thread removes its partial file; waited for within half the
        # grace period of an orderly stop (the process still waits for it at exit).
        deadline = time.monotonic() + self.ctx.config.get_float("appstate.grace_period") / 2
        for t in [*self._threads, self._monitor.thread]:
            if t.ident is not None:  # started (the monitor, unless on_start failed first)
                t.join(timeout=max(0.0, deadline - time.monotonic()))
        for stream in self.streams.values():
            if stream.sound is not None:
                stream.sound.finish(max(0.0, deadline - time.monotonic()))
        self._monitor.close()
        self.client.close()

    def on_tick(self) -> None:
        live = [
            s.info() for s in self.streams.values() if s.state in ("starting", "running", "paused")
        ]
        if live:
            self.ctx.publish("stats.player", StatsPlayer(streams=live))

    # -- helpers ------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._ids += 1
        ended = [k for k, s in self.streams.items() if s.state in ("done", "stopped", "failed")]
        for key in ended[: max(0, len(ended) - KEEP_ENDED)]:  # keep the last ones for streams
            del self.streams[key]
        return f"p{self._ids}"

    def _timeline(self) -> Timeline:
        """The session's edit now (BadTimeline if what the session sent breaks the contract)."""
        return Timeline.from_wire(self.client.request("session", "timeline"))

    def _engine_stream_ended(self, ended: EngineRenderEnded) -> None:
        self.engine_ended[ended.id] = ended
        while len(self.engine_ended) > KEEP_ENDED:  # the oldest go
            del self.engine_ended[next(iter(self.engine_ended))]
        for s in list(self.streams.values()):  # a copy: the main thread adds streams
            if s.engine_stream == ended.id and s.mode == "playback":
                s.dropped += ended.dropped
                if s.state == "running" and ended.state == "done":
                    s.state, s.ended = "done", time.monotonic()
                    if s.sound is not None:
                        s.sound.finish(0)  # it reads what is left in the ring, then ends

    def _running(self, mode: str) -> PlayerStream | None:
        for s in self.streams.values():
            if s.mode == mode and s.state in ("starting", "running", "paused"):
                return s
        return None

    # -- render to a file ---------------------------------------------------------------

    @command
    def on_render(
        self,
        *,
        output: str,
        first: int | None = None,
        count: int | None = None,
        codec: str = "h264",
        timeline: Timeline | None = None,
        audio: bool | None = None,
    ) -> dict[str, Any]:
        """Render frames first..first+count-1 (default: the whole timeline) to the file ``output``.

        ``timeline``: render this contract instead of the session's (a farm task
        renders exactly what it was given; the session stays the user's).
        ``audio``: whether the file has a sound stream; by default it has one when
        any clip of the timeline sounds (``False``: pictures only; ``True``: always,
        silence where nothing sounds). Answers once the stream runs;
        ``player.render.done`` says when the file is complete.
        """
        if self._running("render") is not None:
            raise Conflict("a render is running; one at a time (stop it first)")
        spec = self.codecs.encoder(codec)  # CodecError (bad_args-like) for an unknown name
        target = Path(output).absolute()
        if not target.parent.is_dir():
            raise BadArguments(f"output {target}: no directory {target.parent}")
        timeline = self._timeline() if timeline is None else timeline
        start, n = parse_range(timeline, first, count)
        width, height, rate = timeline.output.width, timeline.output.height, timeline.output.rate
        stream = PlayerStream(self._new_id(), "render", start, n, rate)
        stream.output = str(target)
        stream.ring = self.rings.frames("render", width, height)
        out = timeline.output
        sound = timeline_sounds(timeline) if audio is None else audio
        audio_ring = self.rings.sound("render-audio", out) if sound else None
        from lumiera.shm.ring import Consumer

        # Consumers first (a block ring waits for those it has), then the engine's stream,
        # then the encoder: x264's start overlaps the engine's media opening and first decode.
        consumers = [Consumer(self.rd, stream.ring, timeout=FRAME_WAIT_S)]
        args: dict[str, Any] = {
            "timeline": timeline,
            "first": start,
            "count": n,
            "ring": stream.ring,
            "fmt": "yuv420p",
        }
        reply: dict[str, Any] | None = None
        try:
            if audio_ring is not None:
                consumers.append(Consumer(self.rd, audio_ring, timeout=FRAME_WAIT_S))
                args["audio_ring"] = audio_ring
            reply = self.client.request("engine", "render", args)
            encoder = Encoder(  # CodecError: the engine's stream is stopped, nothing written
                target,
                spec,
                width,
                height,
                rate,
                audio=(out.audio_rate, out.audio_layout) if sound else None,
                marks=self.rd.temp_dir,  # its partial file removed even if this process dies
            )
        except BaseException:
            for c in consumers:
                c.close()
            if reply is not None:  # the engine's stream runs: stopped, the first error said
                try:
                    self.client.request("engine", "stop_stream", {"stream": reply["stream"]})
                except Exception as e:  # noqa: BLE001 - the render's own error goes on up
                    self.log.warning("engine stream %s left running: %s", reply["stream"], e)
            raise
        stream.engine_stream, stream.state = reply["stream"], "running"
        self.streams[stream.id] = stream
        thread = threading.Thread(
            target=self._encode, args=(stream, consumers, encoder), name=f"render-{stream.id}"
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        answer = stream.data()  # as it starts: a short render may be done before the reply
        thread.start()
        return answer

    def _encode(self, stream: PlayerStream, consumers: list[Any], encoder: Encoder) -> None:
        """The render's thread (:func:`~lumiera.steam.renderloop.encode`); publishes its end."""
        encode(
            stream,
            consumers,
            encoder,
            lambda s: self.engine_ended.get(s.engine_stream or ""),
            stopping=self._stopping,
            rd=self.rd,
        )
        topic = "player.render.done" if stream.state == "done" else "player.render.failed"
        self.ctx.publish(topic, PlayerRenderEnded(**dataclasses.asdict(stream.info())))

    # -- playback into the viewer ring -----------------------------------------------------

    @command
    def on_play(
        self, *, first: int | None = None, count: int | None = None, rate: str | None = None
    ) -> dict[str, Any]:
        """Play frames first..first+count-1 in real time into the viewer ring; resumes if paused."""
        current = self._running("playback")
        if current is not None and current.paused_at is not None and first is None:
            return self._start_playback(current, current.paused_at)
        if current is not None:
            self._halt(current, "stopped")
        timeline = self._timeline()
        start, n = parse_range(timeline, first, count)
        try:
            fps = timeline.output.rate if rate is None else rate_of(rate)
        except ValueError as e:
            raise BadArguments(f"rate: {e}") from None
        stream = PlayerStream(self._new_id(), "playback", start, n, fps)
        stream.timeline = preview(timeline, self.preview)
        if timeline_sounds(timeline):
            self._open_sound(stream)  # SoundUnavailable (the device sink): nothing started
        self.streams[stream.id] = stream
        return self._start_playback(stream, start)

    def _open_sound(self, stream: PlayerStream) -> None:
        """The playback's sound: its ring, a reader of it (attached now), its sink's thread."""
        assert stream.timeline is not None
        out = stream.timeline.output
        stream.audio_ring = self.rings.sound("viewer-audio", out)
        stream.sound = SoundOut.open(self.rd, stream.audio_ring, self.sound, stream.id, out)

    def _start_playback(self, stream: PlayerStream, at: int) -> dict[str, Any]:
        timeline = stream.timeline
        assert timeline is not None  # a playback stream keeps what it plays
        out = timeline.output
        stream.ring = self.rings.frames("viewer", out.width, out.height)
        left = stream.first + stream.count - at
        if left < 1:
            stream.state, stream.ended = "done", time.monotonic()
            if stream.sound is not None:
                stream.sound.finish(SOUND_END_WAIT_S)
            return stream.data()
        args: dict[str, Any] = {
            "timeline": timeline,
            "first": at,
            "count": left,
            "ring": stream.ring,
            "fmt": "yuv420p",
            "mode": "playback",
            "rate": rate_text(stream.rate),
        }
        if stream.sound is not None:
            args["audio_ring"] = stream.audio_ring
            # Now, before the request: the stream stopped before has published all it
            # will, this one publishes nothing before its first frame's due time.
            stream.sound.segment(at, time.monotonic())
        reply = self.client.request("engine", "render", args)
        stream.engine_stream = reply["stream"]
        stream.start_due, stream.position_at_start = float(reply["start"]), at
        stream.paused_at = None
        stream.state = "running"
        return stream.data()

    def _halt(self, stream: PlayerStream, state: str) -> None:
        """Stop the engine's stream of ``stream``; the position stays where it was."""
        pos = stream.position()
        if stream.engine_stream is not None and stream.paused_at is None:
            with contextlib.suppress(NotFound):
                self.client.request("engine", "stop_stream", {"stream": stream.engine_stream})
        if stream.sound is not None:  # the engine's stream has ended (stop_stream waits)
            stream.sound.pause(time.monotonic())
        stream.paused_at = pos
        stream.state = state
        if state != "paused":
            stream.ended = time.monotonic()
            if stream.sound is not None:
                stream.sound.finish(SOUND_END_WAIT_S)

    def _playback(self, stream: str | None) -> PlayerStream:
        found = self.streams.get(stream) if stream else self._running("playback")
        if found is None or found.mode != "playback":
            raise NotFound(f"no playback stream {stream or ''}".strip())
        return found

    @command
    def on_pause(self, *, stream: str | None = None) -> dict[str, Any]:
        """Pause playback where it is; ``play`` resumes from there."""
        found = self._playback(stream)
        if found.state == "running":
            self._halt(found, "paused")
        return found.data()

    @command
    def on_seek(self, *, frame: int, stream: str | None = None) -> dict[str, Any]:
        """Move playback to ``frame``: playing goes on from there, paused stays paused there."""
        found = self._playback(stream)
        if not found.first <= frame < found.first + found.count:
            raise BadArguments(
                f"frame {frame} is outside {found.first}..{found.first + found.count - 1}"
            )
        if found.state == "running":
            self._halt(found, "paused")
            return self._start_playback(found, frame)
        found.paused_at = frame
        return found.data()

    @command
    def cmd_stop(self, *, stream: str | None = None) -> dict[str, Any]:
        """Stop a stream (default: the playback); a render's partial file is removed."""
        if stream is not None and stream in self.streams and self.streams[stream].mode == "render":
            found = self.streams[stream]
            found.cancel.set()
            with contextlib.suppress(NotFound):
                self.client.request("engine", "stop_stream", {"stream": found.engine_stream})
            return found.data()
        found = self._playback(stream)
        if found.state in ("running", "paused", "starting"):
            self._halt(found, "stopped")
        return found.data()

    @command
    def on_streams(self) -> list[dict[str, Any]]:
        """The Player's streams and where each stands."""
        return [s.data() for s in self.streams.values()]

    def describe_state(self) -> dict[str, Any]:
        return {"built": True, "streams": [s.data() for s in self.streams.values()]}


ACTOR = PlayerActor
