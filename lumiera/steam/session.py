"""The Session subsystem (Steam): the session model, the command dispatcher, the journal.

Commands arrive as requests (``lumiera send session add_clip '{...}'``) and
run one at a time, in arrival order (the subsystem's main loop is the
dispatcher): each is validated, applied, committed to the session file, and
only then answered and announced on ``session.changed``. Every edit command
takes an optional ``command_id``: a retry with the same id is answered with the
first answer, not applied twice. ``describe`` gives the whole session,
``history`` the undo history; ``undo`` and ``redo`` are commands.

The session file is the positional SESSION of ``lumiera up`` (created when
missing); without one the session lives in memory only, and ``describe`` says
so. A file that cannot be used (corrupt, newer layout) fails the start, with
its reason.

Requests that arrive together are committed in one transaction (group
commit); requests sent while the session is still starting are held by the
supervisor until it runs. The ON_SESSION_* events are barriers the
supervisor drives once every subsystem runs (the session's own start work,
open and replay, is done by then); they are not triggered from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack

from lumiera.actors import Actor, command
from lumiera.bus.events import SessionChanged
from lumiera.errors import BadArguments, LumieraError, Unavailable
from lumiera.steam.core import SessionCore

IN_MEMORY = ":memory:"
# session.changed carries a command's args and what it applied (for a recording's replay,
# docs/RECORDING.md) up to this size, and never more than the bus takes in one frame
# (bus.max_message_bytes, less room for the rest of the event); larger ones are
# announced without them, so that the event itself always travels.
MAX_ANNOUNCED_ARGS_BYTES = 256 * 1024
EVENT_ROOM_BYTES = 4096


class SessionActor(Actor):
    name = "session"
    summary = "session model, command dispatcher, durable journal"

    core: SessionCore | None = None
    announced_cap = MAX_ANNOUNCED_ARGS_BYTES  # set at the start from bus.max_message_bytes

    def on_start(self) -> None:
        """Open (or create) the session file and replay it; a refused file fails the start."""
        path = self.ctx.options.get("session") or IN_MEMORY
        frame = self.ctx.config.get_int("bus.max_message_bytes") - EVENT_ROOM_BYTES
        self.announced_cap = max(0, min(MAX_ANNOUNCED_ARGS_BYTES, frame))
        self.core = SessionCore(Path(path))
        self.log.info(
            "session %s: %d journal rows replayed, revision %d",
            path,
            self.core.replayed,
            self.core.session.revision,
        )

    def on_stop(self) -> None:
        if self.core is not None:
            self.core.close()
            self.core = None

    def handle(self, command_name: str, args: dict[str, Any]) -> Any:
        """One request: an edit command durably (see :meth:`handle_batch`), else the actor's."""
        (outcome,) = self.handle_batch([(command_name, args)])
        if isinstance(outcome, LumieraError):
            raise outcome
        return outcome

    def handle_batch(self, requests: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Requests that arrived together; consecutive edit commands share one commit.

        Group commit: the edits of a run are applied in order, then committed in
        one transaction, and only then answered (and announced on
        ``session.changed``). Any other request first ends the run, so a query
        never sees an edit that is not durable yet.
        """
        outcomes: list[Any] = []
        run: list[tuple[str, dict[str, Any], str | None]] = []
        for command_name, args in requests:
            if self.core is not None and command_name in self.core.commands:
                try:
                    run.append(self._edit(command_name, args))
                except LumieraError as e:
                    outcomes.extend(self._commit(run))
                    run = []
                    outcomes.append(e)
                continue
            outcomes.extend(self._commit(run))
            run = []
            try:
                outcomes.append(super().handle(command_name, args))
            except LumieraError as e:
                outcomes.append(e)
        outcomes.extend(self._commit(run))
        return outcomes

    @staticmethod
    def _edit(command_name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
        args = dict(args)
        cmd_id = args.pop("command_id", None)
        if cmd_id is not None and (not isinstance(cmd_id, str) or not 0 < len(cmd_id) <= 128):
            raise BadArguments("command_id: a string of 1-128 characters")
        return command_name, args, cmd_id

    def _commit(self, run: list[tuple[str, dict[str, Any], str | None]]) -> list[Any]:
        if not run:
            return []
        outcomes = self._core().execute_many(run)
        for (_, args, _), outcome in zip(run, outcomes, strict=True):
            if isinstance(outcome, dict) and not outcome.get("duplicate"):
                self.ctx.publish("session.changed", _changed(outcome, args, self.announced_cap))
        return list(outcomes)

    def _core(self) -> SessionCore:
        if self.core is None:
            raise Unavailable("the session is not open")
        return self.core

    @command
    def on_describe(self) -> dict[str, Any]:
        """The subsystem and the whole session (media, tracks, clips, output, revision)."""
        base = super().on_describe()
        core = self.core
        if core is None:  # not started yet (or stopped): the subsystem, no session
            return {**base, "durable": None, "session": None}
        return {
            **base,
            "commands": {**base["commands"], **{c: "" for c in core.commands}},
            "durable": str(core.path) != IN_MEMORY,
            "session": core.describe(),
        }

    @command
    def on_timeline(self) -> dict[str, Any]:
        """The edit as the Engine renders it: a Timeline (lumiera.bus.timeline) in wire form."""
        return self._core().session.to_data()

    @command
    def on_history(self) -> dict[str, Any]:
        """The undo history: done (oldest first) and undone (next redo first)."""
        return self._core().history()

    def describe_state(self) -> dict[str, Any]:
        return {"built": True}


def _changed(outcome: dict[str, Any], args: dict[str, Any], cap: int) -> SessionChanged:
    """The announcement of an applied command: with its arguments unless together with what
    it applied they pack to more than ``cap`` bytes."""
    applied = outcome["applied"]
    try:
        size = len(msgpack.packb([args, applied], use_bin_type=True))
    except (TypeError, ValueError):  # not plain values: announced without them
        size = cap + 1
    carried = size <= cap
    return SessionChanged(
        command=outcome["command"],
        id=outcome["id"],
        revision=outcome["revision"],
        args=args if carried else None,
        applied=applied if carried else None,
    )


ACTOR = SessionActor
