"""The Engine subsystem (Vault): render jobs against deadlines on a worker pool.

NOT BUILT YET: the scheduler, the worker pool and media I/O come with the
Vault/Engine issue. This actor is the real process with lifecycle, heartbeats
and ``ping``/``describe``, and says so in ``describe``.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor


class EngineActor(Actor):
    name = "engine"
    summary = "render jobs, deadline scheduler, media I/O (scheduler not built yet)"

    def describe_state(self) -> dict[str, Any]:
        return {"built": False, "jobs": 0, "note": "the render engine comes in a later issue"}


ACTOR = EngineActor
