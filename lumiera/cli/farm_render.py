"""``lumiera render SESSION -o OUT --farm ADDRESS`` (or ``--jobs N``): a render cut into segments.

The session file is opened here, the way its own instance would open it (a
:class:`~lumiera.steam.core.SessionCore`: replayed, locked while read, then
closed), and only its timeline is taken. The range is split into segments
(:func:`lumiera.vault.segments.split`, keys from the job's
:func:`~lumiera.vault.segments.job_id`: a retried or resubmitted segment keeps
its key); each segment is one :func:`lumiera.vault.farmtask.render_segment`
task on the Dask scheduler, which the render nodes (``lumiera up --join``)
run. Each result is written to a temp directory beside OUT as it comes back
and released at once (the scheduler would recompute a held result whose node
leaves). Then the parts are joined by remux (:func:`lumiera.vault.segments.join`:
checked, then renamed to OUT).

Sound: segments are pictures only (:func:`~lumiera.vault.farmtask.without_sound`).
When the timeline sounds, this process mixes the whole range's sound itself
(:func:`render_sound`: an :class:`~lumiera.vault.audio.AudioMixer`, the
codec's audio encoder, once for the range, in a thread while the nodes render)
and the join muxes it with the pictures: AAC is primed once, at the start, not
at every segment.

Before any task is submitted, the render waits (``--connect-timeout``) for a
render node to join, and asks every node to check every media of the range
(:func:`~lumiera.vault.farmtask.check_node`): a node that lacks a file, or has
another file under its path, is named with it, and nothing is rendered.

``--jobs N`` is the one-machine shorthand: a
:class:`~lumiera.vault.localfarm.LocalFarm` of N nodes on loopback is made
for this render (its nodes' runtime directories under ``--runtime-dir``, or
``render-PID``) and stopped when the render ends, however it ends.

TLS: ``[farm] tls_*`` (``--config``/``--def``) make the client present this
host's certificate, and only ``tls://`` addresses are accepted then.

Exits 0 when OUT is complete; 1 when a segment or the join fails (the
segment's error, e.g. a media missing on a node, naming the node); 69 when the
scheduler cannot be reached or no node joins; 130 on Ctrl-C (the tasks are cancelled). In every
case but 0 no file has OUT's name, and the temp parts are removed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from distributed import Client, Future, as_completed

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.bus import codec as wire_codec
from lumiera.bus.timeline import Timeline
from lumiera.config import Config
from lumiera.errors import LumieraError, MediaError, NotRunning, RenderFailed
from lumiera.exits import EXIT_INTERRUPTED
from lumiera.steam.core import SessionCore
from lumiera.steam.playout import parse_range
from lumiera.vault import security as security_mod
from lumiera.vault.codecs import AudioEncoder
from lumiera.vault.codecspec import EncoderSpec, Registry
from lumiera.vault.farmtask import check_node, render_segment, without_sound
from lumiera.vault.feeds import timeline_sounds
from lumiera.vault.localfarm import LocalFarm, node_args
from lumiera.vault.mediaserve import MediaServer, address_towards
from lumiera.vault.segments import Segment, job_id, join, split

RETRIES = 2  # a segment whose node dies is run again elsewhere, this often
CLOSE_S = 10.0  # the client's orderly close
FARM_START_S = 60.0  # --jobs: the local farm's nodes start and join within this
SOUND_CHUNK_S = 1  # render_sound mixes this many seconds at a time


def read_timeline(session: Path) -> Timeline:
    """The session file's timeline, as its instance would see it (JournalError if refused)."""
    core = SessionCore(session)
    try:
        return core.session.timeline()
    finally:
        core.close()


def connect(address: str, timeout: float, security: Any = None) -> Client:
    """A Client of the scheduler at ``address``; NotRunning (69) if it is not there in time."""
    try:
        return Client(  # type: ignore[no-untyped-call]
            address, timeout=timeout, set_as_default=False, security=security
        )
    except (OSError, TimeoutError, ValueError) as e:
        why = (security_mod.explain(e) if security is not None else None) or e
        raise NotRunning(f"cannot reach the scheduler at {address}: {why}") from None


class Progress:
    """Per segment and overall: a bar on a terminal, a line per finished segment otherwise."""

    def __init__(self, segments: Sequence[Segment], out: TextIO, width: int = 30) -> None:
        self.total_segments = len(segments)
        self.total_frames = sum(s.count for s in segments)
        self.done_segments = 0
        self.done_frames = 0
        self.out = out
        self.tty = out.isatty()
        self.width = width
        self.started = time.monotonic()

    def finished(self, segment: Segment) -> None:
        self.done_segments += 1
        self.done_frames += segment.count
        elapsed = max(1e-6, time.monotonic() - self.started)
        fps = self.done_frames / elapsed
        eta = (self.total_frames - self.done_frames) / fps if fps else 0.0
        overall = (
            f"segments {self.done_segments}/{self.total_segments}  "
            f"frames {self.done_frames}/{self.total_frames}  {fps:.1f} fps  ETA {eta:.0f} s"
        )
        if self.tty:
            filled = int(self.width * self.done_frames / max(1, self.total_frames))
            self.out.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {overall}")
            if self.done_segments == self.total_segments:
                self.out.write("\n")
        else:
            self.out.write(
                f"segment {segment.index + 1}/{self.total_segments} "
                f"(frames {segment.first}..{segment.end - 1}) done; {overall}\n"
            )
        self.out.flush()


def main(
    args: argparse.Namespace, session: Path, output: Path, first: int | None, count: int | None
) -> int:
    """``--farm ADDRESS``: render on that farm; ``--jobs N``: on a local farm made for it."""
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    if not args.jobs:
        return render_on(
            args.farm, args, cfg, session=session, output=output, first=first, count=count
        )
    rd = runtime_dir.resolve(f"render-{os.getpid()}", args.runtime_dir)
    runtime_dir.prepare(rd)
    base = rd.path / "farm"  # the nodes' runtime directories and logs
    farm = LocalFarm(
        args.jobs,
        base,
        name=rd.instance,
        security=security_mod.load(cfg),  # with [farm] tls_*, a tls:// scheduler as its nodes need
        node_args=node_args(args.config, args.defs),
    )
    try:
        started = time.monotonic()
        address = farm.start(FARM_START_S)
        print(
            f"lumiera render: {args.jobs} render nodes up in {time.monotonic() - started:.2f} s",
            file=sys.stderr,
        )
        return render_on(
            address, args, cfg, session=session, output=output, first=first, count=count
        )
    except KeyboardInterrupt:
        print("\nlumiera render: interrupted; no file written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        farm.stop()
        shutil.rmtree(base, ignore_errors=True)
        if rd.default_location:
            with contextlib.suppress(OSError):
                rd.path.rmdir()


def render_on(
    address: str,
    args: argparse.Namespace,
    cfg: Config,
    *,
    session: Path,
    output: Path,
    first: int | None,
    count: int | None,
) -> int:
    started = time.monotonic()
    timeline = read_timeline(session)
    start, n = parse_range(timeline, first, count)
    sounds = timeline_sounds(timeline)
    pictures = without_sound(timeline)  # what the nodes render; the sound is made here
    wire = pictures.to_wire()
    job = job_id(
        wire_codec.pack(timeline.to_wire()),
        str(start),
        str(n),
        args.codec,
        str(args.segment_frames),
        "ship" if args.ship_media else "",
    )
    segments = split(start, n, args.segment_frames, job=job)
    security = security_mod.load(cfg)
    security_mod.check_address(address, security)
    parts = Path(tempfile.mkdtemp(prefix=f".{output.name}.parts-", dir=output.parent))
    try:
        client = connect(address, args.connect_timeout, security)
    except BaseException:
        shutil.rmtree(parts, ignore_errors=True)
        raise
    futures: list[Future[bytes]] = []
    server: MediaServer | None = None
    mixing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sound")
    try:
        nodes = ready_nodes(
            client,
            address,
            wire,
            first=start,
            count=n,
            timeout=args.connect_timeout,
            ship=args.ship_media,
        )
        print(
            f"lumiera render: {n} frames in {len(segments)} segments on {address} "
            f"({nodes} render nodes)",
            file=sys.stderr,
        )
        ship = None
        if args.ship_media:
            server = serve_media(cfg, address, pictures, start, n)
            ship = server.spec(cfg.get_int("farm.chunk_mb") << 20).to_wire()
        futures = [
            client.submit(
                render_segment,
                wire,
                s.first,
                s.count,
                args.codec,
                ship,
                key=s.key,
                retries=RETRIES,
                pure=False,
            )
            for s in segments
        ]
        sound = None
        if sounds:  # mixed and encoded here, while the nodes render the pictures
            spec = Registry().encoder(args.codec)
            sound = mixing.submit(render_sound, timeline, start, n, spec, parts / "sound")
        _gather(client, futures, segments, parts, sys.stderr)
        files = [_part(parts, s) for s in segments]
        report = join(
            files,
            output,
            timeline.output.rate,
            n,
            counts=[s.count for s in segments],
            audio=None if sound is None else sound.result(),
        )
    except KeyboardInterrupt:
        print("\nlumiera render: interrupted; no file written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        mixing.shutdown(wait=True, cancel_futures=True)
        _cancel(client, futures)
        if server is not None:
            server.stop()
        shutil.rmtree(parts, ignore_errors=True)
    seconds = time.monotonic() - started
    print(
        f"rendered {report.frames} frames to {output} in {seconds:.2f} s "
        f"({report.frames / seconds:.1f} fps overall, {len(segments)} segments on {address})"
    )
    return 0


def render_sound(timeline: Timeline, first: int, count: int, spec: EncoderSpec, path: Path) -> Path:
    """The sound of frames ``first .. first+count-1``, encoded once into ``path``.

    With ``spec``'s audio codec in its container (AAC in MP4, FLAC in Matroska,
    ...), at the output's rate and layout; its time 0 is frame ``first``'s.
    """
    from lumiera.vault.audio import AudioMixer  # only a render with sound

    out = timeline.output
    lo = out.sample_of(first)
    total = out.sample_of(first + count) - lo
    chunk = SOUND_CHUNK_S * out.audio_rate
    with (
        AudioMixer(timeline) as mixer,
        AudioEncoder(path, spec, out.audio_rate, out.audio_layout) as encoder,
    ):
        for at in range(lo, lo + total, chunk):
            encoder.write_audio(mixer.mix(at, min(chunk, lo + total - at)))
    return path


def ready_nodes(
    client: Client,
    address: str,
    wire: dict[str, Any],
    *,
    first: int,
    count: int,
    timeout: float,
    ship: bool = False,
) -> int:
    """Wait for a render node to join; check every node's media; how many nodes there are.

    NotRunning (69) when no node joins within ``timeout``; MediaError naming every
    node that lacks a media file of the range (or has another file under its path),
    and every worker that is not a lumiera render node, before any task is submitted.
    With ``ship`` the nodes fetch the media from this origin: only that each is a
    render node with a media cache is checked.
    """
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise NotRunning(
            f"no render node has joined the scheduler at {address} within {timeout:g} s "
            f"(start one: lumiera up --headless --port 0 --join {address})"
        ) from None
    found: dict[str, str | None] = client.run(check_node, wire, first, count, ship)
    problems = sorted(p for p in found.values() if p is not None)
    if problems:
        raise MediaError(
            f"{len(problems)} of {len(found)} render nodes cannot render this timeline:\n  "
            + "\n  ".join(problems)
        )
    return len(found)


def serve_media(
    cfg: Config, address: str, timeline: Timeline, first: int, count: int
) -> MediaServer:
    """``--ship-media``: serve the media of the range to the nodes (started; the caller stops it).

    Where: ``[farm] serve_host``, else this host's address on the route to the
    scheduler; a free port; TLS (nodes must present a certificate of the farm's
    CA) where ``[farm] tls_*`` are set. Each media is checked to be the file the
    session probed (MediaError/MediaChanged) and hashed: nodes check what they
    fetch against that content key.
    """
    host = cfg.get_str("farm.serve_host") or address_towards(urlsplit(address).hostname or "")
    server = MediaServer(host, 0, ssl_context=security_mod.serve_context(cfg)).start()
    try:
        used = {c.media for c in timeline.clips_within(first, count)}
        offers = [server.offer(m) for m in timeline.media if m.id in used]
    except BaseException:
        server.stop()
        raise
    size = sum(o.size for o in offers) / 2**20
    print(
        f"lumiera render: serving {len(offers)} media ({size:.1f} MiB) "
        f"to the nodes at {server.url}",
        file=sys.stderr,
    )
    return server


def _part(parts: Path, segment: Segment) -> Path:
    return parts / f"part-{segment.index:06d}"


def _gather(
    client: Client, futures: list[Future[bytes]], segments: list[Segment], parts: Path, out: TextIO
) -> None:
    """Write each segment's file as it comes back, release it; the first failure raises."""
    of: dict[str, Segment] = {s.key: s for s in segments}
    progress = Progress(segments, out)
    for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
        segment = of[future.key]
        try:
            data: Any = future.result()
        except LumieraError:
            raise
        except Exception as e:  # noqa: BLE001 - a task's error, carried by Dask
            raise RenderFailed(
                f"segment {segment.index} (frames {segment.first}..{segment.end - 1}): "
                f"{type(e).__name__}: {e}"
            ) from None
        _part(parts, segment).write_bytes(data)
        future.release()
        progress.finished(segment)


def _cancel(client: Client, futures: list[Future[bytes]]) -> None:
    """Cancel what is still pending (nothing after a success), close the client, bounded."""
    try:
        pending = [f for f in futures if not f.done()]  # type: ignore[no-untyped-call]
        if pending:
            client.cancel(pending)  # type: ignore[no-untyped-call]
    finally:
        client.close(timeout=CLOSE_S)  # type: ignore[no-untyped-call]
