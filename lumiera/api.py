"""The script API: drive a running Lumiera from Python.

A script run by ``lumiera up SESSION --script FILE`` gets the instance it runs
in with :func:`app`; any other Python program connects with
:func:`connect`. Everything goes over the bus (the same requests as ``lumiera
send``), so a script sees what every other tool sees::

    from lumiera import api

    app = api.app()
    s = app.session
    a = s.add_media("/media/a.mp4")            # -> "m1"
    v1, v2 = s.add_track("V1"), s.add_track("V2")
    s.set_output(width=1280, height=720, rate="25")
    s.add_clip(a, v1, position=0)
    s.add_clip(a, v2, position=50, source_in=100, source_out=150, opacity=0.5)
    done = app.render("/tmp/out.mp4", progress=print)   # waits; raises on failure
    print(done["frames"], done["fps"])

The session is the one ``lumiera up`` opened (created when the file was
missing). Errors come as the :mod:`lumiera.errors` classes the bus carries
(``NotFound``, ``Conflict``, ``BadArguments``, ``MediaError``...); a script that
raises ends the application as an error (``lumiera up`` exits 1).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumiera import runtime_dir
from lumiera.bus.client import ControlClient
from lumiera.bus.events import Event, PlayerRenderEnded, StatsPlayer, Subscriber
from lumiera.bus.timeline import Timeline
from lumiera.errors import LumieraError, NotRunning, RenderFailed, Unreachable
from lumiera.runtime_dir import RuntimeDir

# Set by the script runner for the scripts it runs.
ENV_INSTANCE = "LUMIERA_INSTANCE"
ENV_RUNTIME_DIR = "LUMIERA_RUNTIME_DIR"
REQUEST_TIMEOUT_S = 60.0
CHECK_EVERY_S = 5.0  # render(): with no event for this long, ask the Player how it stands
Answer = dict[str, Any]  # the session's answer to an edit (see Session)


class Session:
    """The session's commands, as methods: one per command of the session's table.

    The table is :attr:`lumiera.steam.edits.Edits.commands` (plus ``undo`` and
    ``redo``); each method has its command's parameters, hints and docstring
    (tests/unit/test_api.py holds them to it), except that the ``id`` of the
    element a command changes is named after it (``move_clip(clip, ...)``).
    ``add_*`` return the new element's id; the others return the session's
    answer: ``{"id": command id, "command", "revision", "applied": {...}}``.
    A None argument means the command's default.
    """

    def __init__(self, app: App) -> None:
        self._app = app

    def command(self, command_name: str, /, **args: Any) -> Any:
        """Any session command by name (``undo``, ``move_clip``...); arguments as keywords."""
        given = {k: v for k, v in args.items() if v is not None}
        return self._app.request("session", command_name, **given)

    def _edit(self, command_name: str, **args: Any) -> Answer:
        answer: Answer = self.command(command_name, **args)
        return answer

    def _new(self, command_name: str, **args: Any) -> str:
        return str(self._edit(command_name, **args)["applied"]["id"])

    def add_media(self, path: str | Path, *, id: str | None = None) -> str:
        """Add a media file (probed now; the session keeps what the probe found).

        Returns its id.
        """
        return self._new("add_media", path=str(Path(path).absolute()), id=id)

    def add_track(
        self,
        name: str | None = None,
        *,
        id: str | None = None,
        index: int | None = None,
        kind: str = "video",
    ) -> str:
        """Add a track (on top, or at ``index`` from the bottom) of ``kind`` video or audio.

        Returns its id.
        """
        return self._new("add_track", name=name, id=id, index=index, kind=kind)

    def remove_track(self, track: str) -> Answer:
        """Remove a track and every clip on it."""
        return self._edit("remove_track", id=track)

    def add_clip(
        self,
        media: str,
        track: str,
        position: int,
        *,
        source_in: int = 0,
        source_out: int | None = None,
        opacity: float = 1.0,
        gain_db: float = 0.0,
        id: str | None = None,
    ) -> str:
        """Place frames [source_in, source_out) of a media at ``position`` (frames) on a track.

        Returns its id.
        """
        return self._new(
            "add_clip",
            media=media,
            track=track,
            position=position,
            source_in=source_in,
            source_out=source_out,
            opacity=opacity,
            gain_db=gain_db,
            id=id,
        )

    def move_clip(self, clip: str, position: int | None = None, track: str | None = None) -> Answer:
        """Move a clip to another position and/or track."""
        return self._edit("move_clip", id=clip, position=position, track=track)

    def trim_clip(
        self,
        clip: str,
        source_in: int | None = None,
        source_out: int | None = None,
        position: int | None = None,
    ) -> Answer:
        """Change which frames of its media a clip shows (with ``position``: where it starts).

        A left-edge trim moves ``source_in`` and ``position`` together: one
        command, one undo step.
        """
        return self._edit(
            "trim_clip", id=clip, source_in=source_in, source_out=source_out, position=position
        )

    def set_opacity(self, clip: str, opacity: float) -> Answer:
        """Set how opaque a clip is over the tracks below it (0..1)."""
        return self._edit("set_opacity", id=clip, opacity=opacity)

    def remove_clip(self, clip: str) -> Answer:
        """Remove a clip (and its transitions)."""
        return self._edit("remove_clip", id=clip)

    def set_gain(self, clip: str, gain_db: float) -> Answer:
        """Set a clip's sound gain in dB (-96: silent .. +24)."""
        return self._edit("set_gain", id=clip, gain_db=gain_db)

    def add_transition(
        self, a: str, b: str, length: int, *, curve: str = "linear", id: str | None = None
    ) -> str:
        """Cross-fade from clip ``a`` into clip ``b`` over ``length`` frames before their cut.

        ``b`` (which starts where ``a`` ends) is extended to the left over ``a``'s
        end by its handle; ``curve`` (linear or equal_power) shapes the sound's
        fade. Returns its id.
        """
        return self._new("add_transition", a=a, b=b, length=length, curve=curve, id=id)

    def remove_transition(self, transition: str) -> Answer:
        """Remove a transition: its second clip starts at the cut again."""
        return self._edit("remove_transition", id=transition)

    def set_output(
        self,
        width: int | None = None,
        height: int | None = None,
        rate: str | None = None,
        *,
        audio_rate: int | None = None,
        audio_layout: str | None = None,
    ) -> Answer:
        """Set the output frame size and rate ("25", "30000/1001"), audio rate and layout."""
        return self._edit(
            "set_output",
            width=width,
            height=height,
            rate=rate,
            audio_rate=audio_rate,
            audio_layout=audio_layout,
        )

    def undo(self) -> Answer:
        """Undo the newest edit (``nothing_to_undo`` when there is none)."""
        return self._edit("undo")

    def redo(self) -> Answer:
        """Do again the edit undone last (``nothing_to_undo`` when there is none)."""
        return self._edit("redo")

    def describe(self) -> dict[str, Any]:
        """The whole session as plain data: the timeline's wire form, file, journal_rows."""
        result: dict[str, Any] = self._app.request("session", "describe")["session"]
        return result

    def timeline(self) -> Timeline:
        """The edit as the engine renders it: a frozen, checked Timeline (lumiera.bus.timeline)."""
        return Timeline.from_wire(self._app.request("session", "timeline"))


class App:
    """A connection to a running instance: requests, events, render and playback."""

    def __init__(self, rd: RuntimeDir, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.rd = rd
        # Direct calls (svc-<name>, PROTOCOL.md 8.1.1): a script's edits skip the
        # supervisor's hop; routed while a subsystem has no service socket.
        self.client = ControlClient(rd, timeout, direct=True)
        self.events = Subscriber(rd)  # every event this App waits for comes through it
        self.session = Session(self)

    # -- the bus ----------------------------------------------------------------------

    def request(self, subsystem: str, command: str, /, **args: Any) -> Any:
        """One request; returns the answer or raises the error it carries."""
        return self.client.request(subsystem, command, args)

    def subscribe(self, *prefixes: str) -> None:
        """Receive events of these topic prefixes from now on (for :meth:`wait_event`)."""
        self.events.subscribe(*prefixes)

    def wait_event(
        self,
        prefix: str | tuple[str, ...],
        timeout: float,
        where: Callable[[Event], bool] = lambda _e: True,
    ) -> Event:
        """The next event whose topic starts with ``prefix`` (one, or a tuple) and ``where``.

        The event's ``body`` is its topic's declared class (:mod:`lumiera.bus.events`),
        ``data()`` the same as a dict. The prefixes are subscribed first; subscribe
        (:meth:`subscribe`) before doing what causes the event, or it may pass
        unseen. EventTimeout (a TimeoutError) after ``timeout`` s.
        """
        return self.events.wait(prefix, timeout, where)

    # -- render and playback ------------------------------------------------------------

    def render(
        self,
        output: str | Path,
        *,
        first: int | None = None,
        count: int | None = None,
        codec: str = "h264",
        progress: Callable[[dict[str, Any]], None] | None = None,
        timeout: float | None = None,
        timeline: Timeline | None = None,
    ) -> dict[str, Any]:
        """Render the timeline (or frames first..first+count-1) to ``output``; wait for the end.

        ``timeline``: render this one instead of the session's (the session is not
        touched). ``progress`` gets each ``stats.player`` entry of this render
        (frame, fps, eta_s) as a dict. Returns the ``player.render.done`` body as a
        dict; raises RenderFailed (no file left under ``output``'s name) or
        TimeoutError. A render this call gives up on (its timeout, an exception from
        ``progress``, Ctrl-C) is stopped, not left running in the Player.
        """
        self.subscribe("player.render.", "stats.player")
        args: dict[str, Any] = {
            "output": str(output),
            "first": first,
            "count": count,
            "codec": codec,
        }
        if timeline is not None:
            args["timeline"] = timeline
        sid = self.request("player", "render", **args)["id"]
        try:
            return self._wait_render(sid, output, progress, timeout)
        except (RenderFailed, Unreachable):  # the Player ended it, or the instance is gone
            raise
        except BaseException:
            with contextlib.suppress(LumieraError):  # best effort
                self.request("player", "stop", stream=sid)
            raise

    def _wait_render(
        self,
        sid: str,
        output: str | Path,
        progress: Callable[[dict[str, Any]], None] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = CHECK_EVERY_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"render {sid} to {output} not done within {timeout:g} s")
            try:
                event = self.wait_event(
                    ("player.render.", "stats.player"), min(left, CHECK_EVERY_S)
                )
            except TimeoutError:
                # Quiet for a while: ask the Player itself (an instance that is gone
                # raises here), so a missed end event never leaves this waiting.
                found = [s for s in self.request("player", "streams") if s["id"] == sid]
                if not found:
                    raise RenderFailed(f"the player no longer knows render {sid}") from None
                if found[0]["state"] in ("starting", "running"):
                    continue
                if found[0]["state"] == "done":
                    return dict(found[0])
                raise RenderFailed(f"render to {output} failed: {found[0].get('error')}") from None
            body = event.body
            if isinstance(body, StatsPlayer):
                for s in body.streams:
                    if s.id == sid and progress is not None:
                        progress(s.to_wire())
            elif isinstance(body, PlayerRenderEnded) and body.id == sid:
                if event.topic == "player.render.done":
                    return event.data()
                raise RenderFailed(f"render to {output} failed: {body.error}")

    def play(
        self, first: int | None = None, count: int | None = None, rate: str | None = None
    ) -> dict[str, Any]:
        """Start (or resume) playback into the viewer ring; returns the stream."""
        given = {"first": first, "count": count, "rate": rate}
        args = {k: v for k, v in given.items() if v is not None}
        result: dict[str, Any] = self.request("player", "play", **args)
        return result

    def pause(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("player", "pause")
        return result

    def seek(self, frame: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("player", "seek", frame=frame)
        return result

    def stop(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("player", "stop")
        return result

    def close(self) -> None:
        self.events.close()
        self.client.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(instance: str = "default", runtime_directory: str | None = None) -> App:
    """Connect to the running instance ``instance`` (NotRunning if there is none)."""
    return App(runtime_dir.resolve(instance, runtime_directory))


def app() -> App:
    """The instance this script runs in (``lumiera up --script``)."""
    instance = os.environ.get(ENV_INSTANCE)
    if instance is None:
        raise NotRunning(
            "api.app() is for scripts run by `lumiera up --script`; use api.connect() elsewhere"
        )
    return connect(instance, os.environ.get(ENV_RUNTIME_DIR))
