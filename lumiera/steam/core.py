"""The session's core: one command at a time, durable before acknowledged, undoable.

:class:`SessionCore` owns the model, the edits and the journal. ``execute``
resolves a command (validation: the session is untouched on any error),
applies it, commits its journal row, and only then returns; if the commit
fails, the change is undone in memory and the error raised, so a command is
never applied half. Undo and redo are commands too (journaled), so the undo
history survives a restart. Opening a session file replays it: the latest
snapshot, then the rows after it.

Runs in the session process's main thread; no sockets (the actor in
:mod:`lumiera.steam.session` is the driver).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from lumiera.errors import BadArguments, JournalError, LumieraError, NothingToUndo
from lumiera.steam.edits import Edits, Prober, probe_media
from lumiera.steam.journal import Entry, Journal
from lumiera.steam.model import Session

UNDO, REDO = "undo", "redo"
log = logging.getLogger("lumiera.session")


class SessionCore:
    """A session opened from its file (created when missing)."""

    def __init__(
        self,
        path: Path,
        probe: Prober = probe_media,
        snapshot_every: int = 1000,
        undo_depth: int = 1000,
    ) -> None:
        self.path = path
        self.snapshot_every = snapshot_every
        self.undo_depth = undo_depth
        self.session = Session()
        self.edits = Edits(self.session, probe)
        # History entries: {"command", "args", "memento"} (plain data, snapshotted).
        self.done: list[dict[str, Any]] = []
        self.undone: list[dict[str, Any]] = []
        self.journal = Journal(path)
        self.seq = 0
        self.replayed = self._replay()

    @property
    def commands(self) -> list[str]:
        return sorted([*self.edits.commands, UNDO, REDO])

    # -- executing ------------------------------------------------------------------

    def execute(
        self, command: str, args: dict[str, Any], cmd_id: str | None = None
    ) -> dict[str, Any]:
        """Run one command durably; returns what the client is answered.

        A ``cmd_id`` that was applied before returns that first answer (marked
        ``duplicate``) and changes nothing. Raises the command's typed error
        (NotFound, Conflict, BadArguments, UnknownCommand, MediaError,
        NothingToUndo) with the session unchanged, or JournalError when the
        journal cannot be written (the change is rolled back).
        """
        (outcome,) = self.execute_many([(command, args, cmd_id)])
        if isinstance(outcome, LumieraError):
            raise outcome
        return outcome

    def execute_many(
        self, items: list[tuple[str, dict[str, Any], str | None]]
    ) -> list[dict[str, Any] | LumieraError]:
        """Run commands in order, then commit them all in one transaction (group commit).

        Each item's outcome is its answer or its error; a command that fails
        validation changes nothing and does not stop the others. If the commit
        fails, every command of the group is rolled back (newest first) and
        each one's outcome is that JournalError: nothing is acknowledged that
        is not durable.
        """
        outcomes: list[dict[str, Any] | LumieraError] = []
        staged: list[tuple[int, tuple[str, str, dict[str, Any], dict[str, Any]], Any]] = []
        ids: dict[str, int] = {}  # command id -> its outcome's index, in this batch
        retries: list[tuple[int, int]] = []  # (outcome index, index of the first)
        for command, args, cmd_id in items:
            try:
                if cmd_id is not None:
                    earlier = self.journal.find(cmd_id)
                    if earlier is not None:
                        outcomes.append({**earlier.result, "duplicate": True})
                        continue
                    if cmd_id in ids:  # a retry within the batch: the first one's answer
                        retries.append((len(outcomes), ids[cmd_id]))
                        outcomes.append(None)  # type: ignore[arg-type]  # filled in below
                        continue
                cid = cmd_id or uuid.uuid4().hex
                resolved, revert = self._apply_new(command, args)
            except LumieraError as e:
                outcomes.append(e)
                continue
            self.session.revision += 1
            result = {
                "id": cid,
                "command": command,
                "revision": self.session.revision,
                "applied": resolved,
            }
            ids[cid] = len(outcomes)
            staged.append((len(outcomes), (cid, command, resolved, result), revert))
            outcomes.append(result)
        if staged:
            before = self.seq
            try:
                self.seq = self.journal.append([row for _, row, _ in staged])
            except LumieraError as e:
                for index, _, revert in reversed(staged):
                    self.session.revision -= 1
                    revert()
                    outcomes[index] = e
                for index, _first in retries:
                    outcomes[index] = e
                return outcomes
            if self.seq // self.snapshot_every > before // self.snapshot_every:
                try:
                    self._snapshot()
                except LumieraError as e:  # the commands are durable; only replay gets slower
                    log.error("session %s: %s", self.path, e)
        for index, first in retries:
            answer = outcomes[first]
            outcomes[index] = {**answer, "duplicate": True} if isinstance(answer, dict) else answer
        return outcomes

    def _apply_new(self, command: str, args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Validate and apply one command in memory; returns (resolved args, its revert)."""
        if command in (UNDO, REDO):
            if args:
                raise BadArguments(f"{command} takes no arguments")
            return {}, (self._undo() if command == UNDO else self._redo())
        resolved = self.edits.handle(command, args)  # validates; changes nothing
        memento = getattr(self.edits, f"apply_{command}")(resolved)
        saved_undone = self.undone
        self._push({"command": command, "args": resolved, "memento": memento})
        self.undone = []

        def revert() -> None:
            self.done.pop()
            self.undone = saved_undone
            self.edits.restore(memento)

        return resolved, revert

    def _push(self, entry: dict[str, Any]) -> None:
        self.done.append(entry)
        if len(self.done) > self.undo_depth:
            del self.done[0]

    def _undo(self) -> Any:
        if not self.done:
            raise NothingToUndo("nothing to undo")
        entry = self.done.pop()
        redo_memento = self.edits.restore(entry["memento"])
        self.undone.append(entry)

        def revert() -> None:
            self.undone.pop()
            self.edits.restore(redo_memento)
            self.done.append(entry)

        return revert

    def _redo(self) -> Any:
        if not self.undone:
            raise NothingToUndo("nothing to redo")
        entry = self.undone.pop()
        memento = getattr(self.edits, f"apply_{entry['command']}")(entry["args"])
        redone = {**entry, "memento": memento}
        self.done.append(redone)

        def revert() -> None:
            self.done.pop()
            self.edits.restore(memento)
            self.undone.append(entry)

        return revert

    # -- replay and snapshots -------------------------------------------------------

    def _replay(self) -> int:
        """Load the latest snapshot, then apply the rows after it; returns how many rows."""
        count = 0
        try:
            snap = self.journal.latest_snapshot()
            after = 0
            if snap is not None:
                after, state = snap
                self._load(state)
            for entry in self.journal.entries_after(after):
                self._apply_recorded(entry)
                count += 1
            self.seq = self.journal.last_seq()
        except LumieraError as e:
            self.journal.close()
            raise JournalError(f"session file {self.path} cannot be replayed: {e}") from None
        except Exception as e:  # noqa: BLE001 - a damaged file: sqlite, msgpack, a bad row
            self.journal.close()
            raise JournalError(
                f"session file {self.path} cannot be replayed (row {count + 1} after the "
                f"snapshot): {type(e).__name__}: {e}"
            ) from None
        return count

    def _apply_recorded(self, entry: Entry) -> None:
        if entry.command not in (UNDO, REDO) and entry.command not in self.edits.commands:
            raise JournalError(f"row {entry.seq}: unknown command {entry.command!r}")
        if entry.command == UNDO:
            self._undo()
        elif entry.command == REDO:
            self._redo()
        else:
            memento = getattr(self.edits, f"apply_{entry.command}")(entry.args)
            self._push({"command": entry.command, "args": entry.args, "memento": memento})
            self.undone = []
        self.session.revision = entry.result["revision"]

    def _state(self) -> dict[str, Any]:
        return {"session": self.session.to_data(), "done": self.done, "undone": self.undone}

    def _load(self, state: dict[str, Any]) -> None:
        loaded = Session.from_data(state["session"])
        # Edits keep a reference to the session object: refill it in place.
        self.session.__dict__.update(loaded.__dict__)
        self.done = list(state["done"])
        self.undone = list(state["undone"])

    def _snapshot(self) -> None:
        self.journal.snapshot(self.seq, self._state())

    # -- queries --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {**self.session.to_data(), "file": str(self.path), "journal_rows": self.seq}

    def history(self) -> dict[str, Any]:
        return {
            "done": [{"command": e["command"], "args": e["args"]} for e in self.done],
            "undone": [{"command": e["command"], "args": e["args"]} for e in reversed(self.undone)],
            "revision": self.session.revision,
        }

    def close(self) -> None:
        self.journal.close()
