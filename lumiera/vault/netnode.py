"""The render node (Vault): joins a distributed engine (``lumiera up --port N``).

NOT BUILT YET: joining a Dask cluster comes with the distributed-render issue.
This actor is the real process with lifecycle, heartbeats and
``ping``/``describe``; it does not open the port yet, and says so.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor


class NetNodeActor(Actor):
    name = "netnode"
    summary = "render node of a distributed engine (not built yet)"

    def describe_state(self) -> dict[str, Any]:
        return {
            "built": False,
            "port": self.ctx.options.get("port"),
            "listening": False,
            "note": "joining a distributed engine comes in a later issue",
        }


ACTOR = NetNodeActor
