"""Media shipping end to end: an origin serves a real video, a node process localizes it.

The origin is this process (a :class:`MediaServer` on loopback); the "node" is
a separate Python process with its own cache directory (``$XDG_CACHE_HOME``
of its own, the configuration's default), as a render node on another host
would have: it gets the timeline and the ShipSpec as plain maps, localizes the
timeline, checks its sources and decodes frames of the cached file.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lumiera.bus.timeline import Timeline
from lumiera.vault.media import check_sources
from lumiera.vault.mediaserve import MediaServer
from tests.support import timeline_of
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration

FRAMES = 12
CHUNK = 2048
ROOT = Path(__file__).parents[2]

NODE = """
import json, sys
from pathlib import Path
from lumiera import config
from lumiera.bus.timeline import Timeline
from lumiera.vault.media import MediaPool, check_sources
from lumiera.vault.mediacache import MediaCache, localize
from lumiera.vault.mediaserve import ShipSpec
from tests.unit.vault.mediakit import read_code

given = json.loads(sys.stdin.read())
timeline = Timeline.from_wire(given["timeline"])
cache = MediaCache.from_config(config.load())
local = localize(timeline, ShipSpec.from_wire(given["spec"]), cache, timeout=30.0)
check_sources(local, 0, local.length)
media = local.media_by_id["m1"]
pool = MediaPool()
pool.expect(media)
codes = [read_code(pool.frame(media.path, n, "gray")) for n in (0, 5, 11)]
pool.close()
print(json.dumps({"media": local.to_wire()["media"], "codes": codes}))
"""


def run_node(timeline: dict[str, Any], spec: dict[str, Any], cache_home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", NODE],
        input=json.dumps({"timeline": timeline, "spec": spec}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "XDG_CACHE_HOME": str(cache_home)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_node_without_the_origins_storage_renders_from_its_cache(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    video = write_video(origin / "m1.mkv", FRAMES, "ffv1")
    timeline = timeline_of(
        {
            "output": {"width": 64, "height": 48, "rate": "25"},
            "media": [{"id": "m1", "path": str(video)}],
            "tracks": [{"id": "t1", "name": "V1"}],
            "clips": [
                {
                    "id": "c1",
                    "media": "m1",
                    "track": "t1",
                    "position": 0,
                    "source_in": 0,
                    "source_out": FRAMES,
                },
            ],
        }
    )
    node_home = tmp_path / "node"

    with MediaServer("127.0.0.1") as server:
        server.offer(timeline.media_by_id["m1"])
        spec = server.spec(CHUNK).to_wire()
        first = run_node(timeline.to_wire(), spec, node_home)
        downloads = server.requests
        again = run_node(timeline.to_wire(), spec, node_home)  # another process: cached
        assert server.requests == downloads

    assert downloads == math.ceil(video.stat().st_size / CHUNK)
    assert first["codes"] == again["codes"] == [0, 5, 11]
    (media,) = first["media"]
    cached = Path(media["path"])
    assert cached.parent == node_home / "lumiera" / "media"
    assert cached.read_bytes() == video.read_bytes()
    assert media["inode"] == cached.stat().st_ino != video.stat().st_ino
    assert (media["size"], media["mtime_ns"]) == (video.stat().st_size, video.stat().st_mtime_ns)
    assert again["media"] == first["media"]
    local = Timeline.from_wire({**timeline.to_wire(), "media": [media]})
    check_sources(local, 0, FRAMES)  # here too: the node's file is the one the origin probed
