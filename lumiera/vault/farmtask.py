"""The render node's task: one segment of a timeline, rendered by the node's own instance.

A farm render submits :func:`render_segment` to the Dask scheduler once per
segment (``client.submit(render_segment, timeline.to_wire(), first, count,
codec, key=..., retries=..., pure=False)``); the scheduler runs it on a render
node's Worker (``lumiera up --join``), in the Worker's thread pool, in the
netnode's process. It is a plain module-level function, so the client ships it
by reference and the node imports it from its own lumiera.

The task renders with the node's Player and Engine through the bus, as a script
does (:mod:`lumiera.api`), giving the Player the timeline it was sent
(``player render`` with ``timeline``): it renders exactly that contract and the
node's session is never touched. The segment file is written into the node's
temp area, read back as bytes (segments are small: a few seconds) and removed.

Segments are pictures only (:func:`without_sound`): the render's origin
encodes the sound of the whole range once and the join muxes it in
(:mod:`lumiera.cli.farm_render`), because AAC encoded per segment would be
primed at every segment and gap at every join.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from pathlib import Path
from typing import Any

from lumiera import api
from lumiera.bus.timeline import Timeline
from lumiera.errors import LumieraError, MediaError, Unavailable
from lumiera.vault.daskworker import PLUGIN_NAME, NodePlugin, this_node
from lumiera.vault.media import check_sources
from lumiera.vault.mediacache import localized
from lumiera.vault.mediaserve import ShipSpec


def render_segment(
    timeline: dict[str, Any],
    first: int,
    count: int,
    codec: str = "ffv1",
    ship: dict[str, Any] | None = None,
) -> bytes:
    """Frames ``first .. first+count-1`` of ``timeline`` (wire form) encoded with ``codec``.

    Returns the segment file's bytes: a complete file of ``count`` frames, its
    first frame a keyframe (a fresh encoder), timestamps from 0. Runs on a
    render node only, in a thread of its Worker's pool, and waits at most
    ``[netnode] task_timeout`` (its turn at the Player included).

    ``ship`` (a :class:`~lumiera.vault.mediaserve.ShipSpec` in wire form, from
    ``--ship-media``): the media of the range are fetched from the render's
    origin into this node's cache (once; then found there), checked against
    the content the origin offered, held while the segment renders, and the
    timeline rendered reads them from the cache.

    Raises (and Dask carries to the client): BadTimeline (not a valid contract),
    MediaError/MediaChanged naming the node, the media and its path (missing
    here, or not the file that was probed), BadArguments or CodecError (an
    empty range, an unknown codec), RenderFailed (the render failed),
    ShuttingDown (the node is stopping: the scheduler retries it elsewhere),
    TimeoutError, Unavailable (not run on a lumiera render node).
    """
    node = this_node()
    contract = without_sound(Timeline.from_wire(timeline))
    spec = None if ship is None else ShipSpec.from_wire(ship)
    with node.task(), contextlib.ExitStack() as held:
        if spec is not None:
            contract = fetch_media(node, held, contract, spec, (first, count))
        check_media(node, contract, first, count)
        out = Path(node.temp_dir) / f"segment-{first}+{count}-{uuid.uuid4().hex[:8]}.{codec}"
        try:
            with api.connect(node.instance, node.runtime_dir) as app:
                app.render(
                    out,
                    first=first,
                    count=count,
                    codec=codec,
                    timeline=contract,
                    progress=node.check_stopping,
                    timeout=node.task_timeout,
                )
            return out.read_bytes()
        finally:
            out.unlink(missing_ok=True)


def without_sound(timeline: Timeline) -> Timeline:
    """The timeline's pictures alone: what a segment renders (the origin renders the sound).

    The clips of audio tracks and of media without video go, with their
    transitions, and so do the media only they used; the other media lose their
    sound (so no clip sounds, and no node is asked for a file of sound alone).
    """
    clips = tuple(c for c in timeline.clips if timeline.is_video(c))
    kept = {c.id for c in clips}
    used = {c.media for c in clips}
    media = tuple(
        dataclasses.replace(m, audio_rate=0, audio_channels=0, audio_layout="", audio_samples=0)
        for m in timeline.media
        if m.id in used
    )
    transitions = tuple(t for t in timeline.transitions if t.a in kept and t.b in kept)
    return dataclasses.replace(timeline, media=media, clips=clips, transitions=transitions)


def fetch_media(
    node: NodePlugin,
    held: contextlib.ExitStack,
    timeline: Timeline,
    spec: ShipSpec,
    segment: tuple[int, int],
) -> Timeline:
    """The timeline reading the range's media from this node's cache, fetched from the origin.

    The cached files stay held (no sweep removes them) until ``held`` closes.
    MediaError naming the node, the media and the origin's url when one cannot
    be fetched or is not the content offered.
    """
    if node.cache is None:
        raise Unavailable(f"node {node.node} has no media cache")
    try:
        local: Timeline = held.enter_context(
            localized(
                timeline,
                spec,
                node.cache,
                node.task_timeout,
                within=segment,
                ssl_context=node.fetch_ssl,
            )
        )
    except MediaError as e:
        raise type(e)(f"node {node.node}: {e}") from None
    return local


def check_media(node: NodePlugin, timeline: Timeline, first: int, count: int) -> None:
    """Every media of the range is on this node, the file that was probed (else MediaError).

    The message names the node first: a farm's operator sees which host lacks what.
    """
    try:
        check_sources(timeline, first, count)
    except MediaError as e:
        raise type(e)(f"node {node.node}: {e}") from None


def check_node(
    timeline: dict[str, Any], first: int, count: int, ship: bool = False, dask_worker: Any = None
) -> str | None:
    """What keeps this node from rendering frames ``first .. first+count-1``; None: nothing.

    The farm render runs it on every worker before it submits any task
    (``Client.run``, which passes ``dask_worker``): every media of the range is
    checked on every node, and a node that lacks one is named with the media and
    its path, as is a worker that is not a lumiera render node. With ``ship``
    (``--ship-media``) the node fetches the media itself: only that it is a render
    node with a media cache is checked. Never raises.
    """
    plugin = None if dask_worker is None else dask_worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, NodePlugin):
        where = getattr(dask_worker, "address", "?")
        return f"worker {getattr(dask_worker, 'name', '?')} at {where}: not a lumiera render node"
    if ship:
        return None if plugin.cache is not None else f"node {plugin.node}: no media cache"
    try:
        check_media(plugin, Timeline.from_wire(timeline), first, count)
    except LumieraError as e:
        return str(e)
    return None
