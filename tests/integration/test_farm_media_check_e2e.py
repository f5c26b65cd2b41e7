"""Before a farm render submits any segment: a render node must be there, and see every media.

One of the two render nodes runs in a mount namespace of its own where the
media directory is an empty tmpfs: a host that does not have the files (what
a farm without shared storage is). The render must name that node and the
file before any frame is rendered, and write nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from lumiera.testing import Instance
from lumiera.vault.mediaserve import content_key
from tests.integration.farmkit import (
    EXIT_UNAVAILABLE,
    EXPECTED,
    codes,
    decoded,
    only,
    render,
    write_session,
)
from tests.support import loopback_cluster

pytestmark = pytest.mark.integration


class BlindInstance(Instance):
    """An instance that sees an empty directory where ``hidden`` is (unshare + tmpfs)."""

    def __init__(self, hidden: Path, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hidden = hidden

    @property
    def command(self) -> list[str]:
        mount = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
        unshare = ["unshare", "-m", "--propagation", "private", "sh", "-c", mount]
        return [*unshare, str(self.hidden), *super().command]


def can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs t /mnt"]
    return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(tmp_path_factory.mktemp("mediacheck"))


@pytest.fixture
def blind_farm(session: Path) -> Iterator[str]:
    """A scheduler, one node that sees the media, one that does not: the address."""
    if not can_unshare():
        pytest.skip("needs unshare -m and mount (root) to hide the media from one node")
    with loopback_cluster() as cluster:
        address = cluster.scheduler_address
        join = ["--headless", "--port", "0", "--join", address]
        seeing = Instance(join, defs=["netnode.name=seeing"])
        blind = BlindInstance(session.parent, join, defs=["netnode.name=blind"])
        with seeing as a, blind as b:
            a.wait_running(), b.wait_running()
            with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
                client.wait_for_workers(2, timeout=10)
            yield address


def test_a_node_that_lacks_a_media_file_is_named_before_any_segment(blind_farm, session, tmp_path):
    out = tmp_path / "out.mkv"
    done = render(str(session), "-o", str(out), "--codec", "ffv1", "--farm", blind_farm)
    assert done.returncode == 1, done.stderr
    assert "1 of 2 render nodes cannot render this timeline" in done.stderr
    assert f"node blind: media m1: {session.parent / 'm1.mkv'} is missing" in done.stderr
    assert "node seeing" not in done.stderr
    assert "segment" not in done.stderr  # nothing was submitted, nothing came back
    only(tmp_path)


def test_a_scheduler_without_render_nodes_is_a_clear_error_soon(session, tmp_path):
    with loopback_cluster() as cluster:
        address = cluster.scheduler_address
        out = tmp_path / "out.mkv"
        done = render(
            str(session), "-o", str(out), "--farm", address, "--connect-timeout", "1", timeout=30
        )
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr
    assert f"no render node has joined the scheduler at {address} within 1 s" in done.stderr
    only(tmp_path)


@pytest.fixture
def blind_nodes(session: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A scheduler and two nodes that see none of the media: (address, their shared cache)."""
    if not can_unshare():
        pytest.skip("needs unshare -m and mount (root) to hide the media from the nodes")
    cache = tmp_path / "cache"
    with loopback_cluster() as cluster:
        address = cluster.scheduler_address
        join = ["--headless", "--port", "0", "--join", address]
        defs = [f"netnode.cache_dir={cache}"]
        nodes = [BlindInstance(session.parent, join, defs=defs) for _ in range(2)]
        with nodes[0] as a, nodes[1] as b:
            a.wait_running(), b.wait_running()
            with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
                client.wait_for_workers(2, timeout=10)
            yield address, cache


def test_ship_media_renders_on_nodes_that_share_no_storage_exactly(blind_nodes, session, tmp_path):
    address, cache = blind_nodes
    out = tmp_path / "out.mkv"
    args = [str(session), "-o", str(out), "--codec", "ffv1", "--farm", address]
    refused = render(*args, "--segment-frames", "10")
    assert refused.returncode == 1, refused.stderr
    assert "2 of 2 render nodes cannot render this timeline" in refused.stderr

    done = render(*args, "--segment-frames", "10", "--ship-media")
    assert done.returncode == 0, done.stderr
    assert "serving 2 media" in done.stderr
    assert codes(decoded(out)[0]) == EXPECTED
    keys = {content_key(session.parent / "m1.mkv"), content_key(session.parent / "m2.mkv")}
    assert {p.name for p in cache.iterdir() if not p.name.endswith(".lock")} == keys
    for key in keys:  # the cached copies are the origin's bytes
        assert content_key(cache / key) == key
    again = render(*args, "--segment-frames", "20", "--ship-media")  # now found in the cache
    assert again.returncode == 0, again.stderr
    only(tmp_path, "out.mkv", "cache")
