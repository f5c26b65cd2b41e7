"""The Player subsystem (Steam): calculation streams towards outputs.

NOT BUILT YET: calculation streams, file and viewer outputs come with the
Player issue. This actor is the real process with lifecycle, heartbeats and
``ping``/``describe``.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor


class PlayerActor(Actor):
    name = "player"
    summary = "calculation streams and outputs (not built yet)"

    def describe_state(self) -> dict[str, Any]:
        return {"built": False, "streams": [], "note": "playback and render come in a later issue"}


ACTOR = PlayerActor
