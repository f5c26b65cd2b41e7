"""Session diffs for the UI-Bus: what changed between two timelines of a session.

The GUI keeps the last timeline it sent a page; after each ``session.changed``
it fetches the new one and sends only the difference (:class:`SessionDiff`),
so a page applies an edit without redrawing everything. Pure: no sockets.
"""

from __future__ import annotations

from lumiera.bus.timeline import Timeline
from lumiera.stage.gui.uibus import SessionDiff


def diff(before: Timeline, after: Timeline, command: str = "") -> SessionDiff:
    """What turns ``before`` into ``after``: added or changed elements whole, removed ids.

    Tracks, output and transitions are sent whole when they changed (few, and
    a transition is only valid with its clips: the page replaces the list).
    """
    old_media = {m.id: m for m in before.media}
    old_clips = {c.id: c for c in before.clips}
    new_media = {m.id: m for m in after.media}
    new_clips = {c.id: c for c in after.clips}
    return SessionDiff(
        base=before.revision,
        revision=after.revision,
        command=command,
        media=tuple(m for m in after.media if old_media.get(m.id) != m),
        clips=tuple(c for c in after.clips if old_clips.get(c.id) != c),
        removed_media=sorted(old_media.keys() - new_media.keys()),
        removed_clips=sorted(old_clips.keys() - new_clips.keys()),
        tracks=after.tracks if after.tracks != before.tracks else None,
        output=after.output if after.output != before.output else None,
        transitions=after.transitions if after.transitions != before.transitions else None,
    )


def apply(timeline: Timeline, change: SessionDiff) -> Timeline:
    """``timeline`` with ``change`` applied (what a page does; the tests check it here)."""
    media = {m.id: m for m in timeline.media}
    clips = {c.id: c for c in timeline.clips}
    for mid in change.removed_media:
        media.pop(mid, None)
    for cid in change.removed_clips:
        clips.pop(cid, None)
    media.update((m.id, m) for m in change.media)
    clips.update((c.id, c) for c in change.clips)
    return Timeline(
        output=change.output or timeline.output,
        media=tuple(sorted(media.values(), key=lambda m: m.id)),
        tracks=change.tracks if change.tracks is not None else timeline.tracks,
        clips=tuple(sorted(clips.values(), key=lambda c: (c.track, c.position, c.id))),
        revision=change.revision,
        transitions=(
            change.transitions if change.transitions is not None else timeline.transitions
        ),
    )
