"""The Session subsystem (Steam): the session model, the command dispatcher, the journal.

NOT BUILT YET: the model, the commands with undo and the durable journal come
with the Session issue. This actor is the real process with lifecycle,
heartbeats and ``ping``/``describe``; it reports the session file it was given.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor


class SessionActor(Actor):
    name = "session"
    summary = "session model, command dispatcher, durable journal (model not built yet)"

    def describe_state(self) -> dict[str, Any]:
        return {
            "built": False,
            "session_file": self.ctx.options.get("session"),
            "note": "the session model and journal come in a later issue",
        }


ACTOR = SessionActor
