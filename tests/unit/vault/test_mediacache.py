"""The origin's media server and a node's media cache: real sockets, files and processes.

Every server here is a :class:`MediaServer` on loopback; its ``requests``
counter says what the nodes asked. Files are random bytes (the server and the
cache never decode): what matters is their size, mtime, inode and content.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import math
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgpack
import pytest

from lumiera import config
from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track
from lumiera.errors import BadMessage, MediaChanged, MediaError, UsageError
from lumiera.vault.media import check_sources
from lumiera.vault.mediacache import MediaCache, localize, localized
from lumiera.vault.mediaserve import MediaServer, Offer, ShipSpec, address_towards, content_key
from tests.support import tmpfs
from tests.unit.vault.test_security import make_pki

CHUNK = 4096
SIZE = 3 * CHUNK + 100  # four requests: three whole chunks and a short one


def random_file(path: Path, size: int = SIZE) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def media_of(path: Path, media_id: str = "m1") -> Media:
    st = path.stat()
    return Media(
        media_id, str(path), 1, Fraction(25), 64, 48, "yuv420p", st.st_size, st.st_mtime_ns, 0
    )


def timeline_of(*media: Media) -> Timeline:
    """One track showing each media for one frame, in turn."""
    clips = tuple(Clip(f"c{k}", m.id, "t1", k, 0, 1) for k, m in enumerate(media))
    return Timeline(Output(64, 48), media, (Track("t1", "V1"),), clips)


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with MediaServer("127.0.0.1") as serving:
        yield serving


def fetch(cache: MediaCache, server: MediaServer, offer: Offer, **kw: Any) -> Path:
    kw.setdefault("chunk_bytes", CHUNK)
    kw.setdefault("timeout", 10.0)
    return cache.fetch(offer, server.url, kw.pop("token", server.token), **kw)


def get(server: MediaServer, target: str, token: str | None = None) -> tuple[int, bytes]:
    """A raw request to the server: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        auth = {} if token == "" else {"Authorization": f"Bearer {token or server.token}"}
        conn.request("GET", target, headers=auth)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_a_file_is_fetched_once_in_chunks_then_found_without_a_request(
    tmp_path: Path, server: MediaServer
) -> None:
    origin = random_file(tmp_path / "origin.bin")
    offer = server.offer(media_of(origin))
    assert offer.key == content_key(origin)
    cache = MediaCache(tmp_path / "cache", 1 << 20)

    path = fetch(cache, server, offer)

    assert path == cache.path_of(offer.key)
    assert path.read_bytes() == origin.read_bytes()
    assert path.stat().st_mtime_ns == origin.stat().st_mtime_ns  # the origin's, not ours
    assert server.requests == math.ceil(SIZE / CHUNK)
    assert sorted(os.listdir(cache.directory)) == sorted([offer.key, f"{offer.key}.lock"])
    assert fetch(cache, server, offer) == path
    assert server.requests == math.ceil(SIZE / CHUNK)  # a hit asks nothing


def test_the_server_caps_a_chunk_and_the_cache_asks_on_from_where_it_ended(
    tmp_path: Path,
) -> None:
    origin = random_file(tmp_path / "origin.bin")
    with MediaServer("127.0.0.1", max_chunk=1000) as server:
        offer = server.offer(media_of(origin))
        status, body = get(server, f"/media/{offer.key}?offset=10&length=5000")
        assert (status, body) == (200, origin.read_bytes()[10:1010])
        path = fetch(MediaCache(tmp_path / "cache", 1 << 20), server, offer)
        assert path.read_bytes() == origin.read_bytes()
        assert server.requests == 1 + math.ceil(SIZE / 1000)


def test_least_recently_used_files_are_swept_beyond_the_bound(
    tmp_path: Path, server: MediaServer
) -> None:
    a, b, c = (server.offer(media_of(random_file(tmp_path / n), n)) for n in "abc")
    cache = MediaCache(tmp_path / "cache", 2 * SIZE + SIZE // 2)
    fetch(cache, server, a)
    fetch(cache, server, b)
    asked = server.requests
    fetch(cache, server, a)  # a is used again: b is now the least recently used
    assert server.requests == asked

    fetch(cache, server, c)

    assert {p.name for p in cache.directory.iterdir() if "." not in p.name} == {a.key, c.key}


def test_the_file_just_fetched_stays_even_beyond_the_bound(
    tmp_path: Path, server: MediaServer
) -> None:
    a, b = (server.offer(media_of(random_file(tmp_path / n), n)) for n in "ab")
    cache = MediaCache(tmp_path / "cache", 1)
    assert fetch(cache, server, a).is_file()
    assert fetch(cache, server, b).is_file()
    assert not cache.path_of(a.key).exists()
    assert not cache.path_of(a.key).with_suffix(".lock").exists()


def test_a_file_in_use_is_never_swept(tmp_path: Path, server: MediaServer) -> None:
    a, b = (media_of(random_file(tmp_path / n), n) for n in "ab")
    offers = server.offer(a), server.offer(b)
    cache = MediaCache(tmp_path / "cache", 1)
    with localized(timeline_of(a), server.spec(CHUNK), cache, 10.0) as local:
        fetch(cache, server, offers[1])  # its sweep would remove a: a is held
        assert Path(local.media_by_id["a"].path).is_file()
        check_sources(local, 0, 1)
    assert cache.sweep(keep={offers[1].key}) == [offers[0].key]


def test_localize_replaces_each_offered_media_by_its_cached_file(
    tmp_path: Path, server: MediaServer
) -> None:
    shipped, local = (media_of(random_file(tmp_path / n), n) for n in ("m1", "m2"))
    server.offer(shipped)
    timeline = timeline_of(shipped, local)
    cache = MediaCache(tmp_path / "cache", 1 << 20)

    assert localize(timeline, server.spec(CHUNK), cache, 10.0, within=(1, 1)) == timeline
    assert server.requests == 0  # frame 1 shows only m2, which is not shipped
    result = localize(timeline, server.spec(CHUNK), cache, 10.0)

    cached = result.media_by_id["m1"]
    assert Path(cached.path).parent == cache.directory
    assert (cached.size, cached.mtime_ns) == (shipped.size, shipped.mtime_ns)
    assert cached.inode == Path(cached.path).stat().st_ino
    assert result.media_by_id["m2"] == local
    check_sources(result, 0, 2)
    asked = server.requests
    assert localize(timeline, server.spec(CHUNK), cache, 10.0) == result
    assert server.requests == asked


FETCH_IN_A_PROCESS = """
import json, sys
from pathlib import Path
from lumiera.vault.mediacache import MediaCache
from lumiera.vault.mediaserve import Offer
a = json.loads(sys.stdin.readline())
print("ready", flush=True)
cache = MediaCache(Path(a["dir"]), 1 << 30)
path = cache.fetch(Offer.from_wire(a["offer"]), a["url"], a["token"], chunk_bytes=a["chunk"],
                   timeout=30.0)
print(path, flush=True)
"""


def test_two_processes_fetching_one_file_download_it_once(
    tmp_path: Path, server: MediaServer
) -> None:
    origin = random_file(tmp_path / "origin.bin", 64 * CHUNK)
    offer = server.offer(media_of(origin))
    cache = tmp_path / "cache"
    cache.mkdir()
    args = {
        "dir": str(cache),
        "offer": offer.to_wire(),
        "url": server.url,
        "token": server.token,
        "chunk": CHUNK,
    }
    with open(cache / f"{offer.key}.lock", "a") as lock:  # both wait here, then race
        fcntl.flock(lock, fcntl.LOCK_EX)
        nodes = [
            subprocess.Popen(
                [sys.executable, "-c", FETCH_IN_A_PROCESS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for node in nodes:
            assert node.stdin is not None and node.stdout is not None
            node.stdin.write(json.dumps(args) + "\n")
            node.stdin.flush()
            assert node.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # both are in fetch(), waiting for the lock
    outputs = [node.communicate(timeout=60)[0].strip() for node in nodes]

    assert [node.returncode for node in nodes] == [0, 0]
    assert outputs == [str(cache / offer.key)] * 2
    assert (cache / offer.key).read_bytes() == origin.read_bytes()
    assert server.requests == 64  # one download


def test_a_file_changed_on_the_origin_is_refused_and_nothing_is_cached(
    tmp_path: Path, server: MediaServer
) -> None:
    origin = random_file(tmp_path / "origin.bin")
    offer = server.offer(media_of(origin))
    random_file(origin)  # rewritten: same size, another mtime
    cache = MediaCache(tmp_path / "cache", 1 << 20)

    with pytest.raises(MediaError, match="409") as refused:
        fetch(cache, server, offer)

    assert "media m1" in str(refused.value)
    assert server.url in str(refused.value)
    assert "changed on the origin" in str(refused.value)
    assert os.listdir(cache.directory) == []


def test_content_that_is_not_the_offers_is_refused_and_nothing_is_cached(
    tmp_path: Path, server: MediaServer
) -> None:
    origin = random_file(tmp_path / "origin.bin")
    offer = server.offer(media_of(origin))
    before = origin.stat()
    with open(origin, "r+b") as f:  # changed in place, its mtime put back: the identity holds
        f.write(b"\0" * 16)
    os.utime(origin, ns=(before.st_atime_ns, before.st_mtime_ns))
    cache = MediaCache(tmp_path / "cache", 1 << 20)

    with pytest.raises(MediaError, match="sha256") as refused:
        fetch(cache, server, offer)

    assert "media m1" in str(refused.value)
    assert os.listdir(cache.directory) == []


def test_a_wrong_or_missing_token_is_refused(tmp_path: Path, server: MediaServer) -> None:
    offer = server.offer(media_of(random_file(tmp_path / "origin.bin")))
    cache = MediaCache(tmp_path / "cache", 1 << 20)

    with pytest.raises(MediaError, match="403"):
        fetch(cache, server, offer, token="not-the-token")

    assert get(server, f"/media/{offer.key}", token="")[0] == 401
    assert get(server, f"/media/{offer.key}", token=server.token + "x")[0] == 403
    assert os.listdir(cache.directory) == []


def test_ranges_outside_the_file_and_keys_not_offered_are_refused(
    tmp_path: Path, server: MediaServer
) -> None:
    offer = server.offer(media_of(random_file(tmp_path / "origin.bin")))
    media = f"/media/{offer.key}"
    assert get(server, f"{media}?offset={SIZE}")[0] == 416
    assert get(server, f"{media}?offset=-1")[0] == 416
    assert get(server, f"{media}?offset=0&length=0")[0] == 416
    assert get(server, f"{media}?offset=ten")[0] == 400
    assert get(server, f"{media}?offset={SIZE - 1}&length=9") == (
        200,
        (tmp_path / "origin.bin").read_bytes()[-1:],
    )
    assert get(server, "/media/" + "0" * 64)[0] == 404
    assert get(server, "/media/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert get(server, "/etc/passwd")[0] == 404


def test_a_full_disk_fails_naming_enospc_and_leaves_no_partial(
    tmp_path: Path, server: MediaServer
) -> None:
    offer = server.offer(media_of(random_file(tmp_path / "origin.bin", 2 << 20)))
    with tmpfs(tmp_path / "small", "1M") as small:
        cache = MediaCache(small / "cache", 1 << 30)
        with pytest.raises(MediaError, match="ENOSPC") as refused:
            fetch(cache, server, offer, chunk_bytes=1 << 20)
        assert "media m1" in str(refused.value)
        assert os.listdir(cache.directory) == []


def test_a_server_that_does_not_answer_is_given_up_on_in_time(tmp_path: Path) -> None:
    with socket.socket() as silent:  # it listens, and never accepts
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        offer = Offer("m1", "a" * 64, 10, 1)
        cache = MediaCache(tmp_path / "cache", 1 << 20)
        started = time.monotonic()
        with pytest.raises(MediaError, match="timed out") as refused:
            cache.fetch(offer, url, "token", chunk_bytes=CHUNK, timeout=0.5)
        assert time.monotonic() - started < 3.0
    assert url in str(refused.value)
    assert os.listdir(cache.directory) == []


def test_left_over_partial_downloads_are_swept(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, 1 << 20)
    (tmp_path / ("b" * 64 + ".partial")).write_bytes(b"half")
    (tmp_path / "unrelated.txt").write_bytes(b"kept")
    assert cache.sweep() == []
    assert os.listdir(tmp_path) == ["unrelated.txt"]


def test_an_offer_is_made_only_of_the_file_the_session_probed(
    tmp_path: Path, server: MediaServer
) -> None:
    origin = random_file(tmp_path / "origin.bin")
    probed = media_of(origin)
    random_file(origin, SIZE + 1)
    with pytest.raises(MediaChanged, match="m1"):
        server.offer(probed)
    origin.unlink()
    with pytest.raises(MediaError, match="m1"):
        server.offer(probed)


def test_offers_and_ship_specs_travel_as_plain_maps(server: MediaServer, tmp_path: Path) -> None:
    server.offer(media_of(random_file(tmp_path / "origin.bin")))
    spec = server.spec(CHUNK)
    wire = msgpack.unpackb(msgpack.packb(spec.to_wire()))
    assert ShipSpec.from_wire(wire) == spec
    assert spec.offer_of("m1") == spec.offers[0]
    assert spec.offer_of("m2") is None
    assert server.token not in repr(spec)
    with pytest.raises(BadMessage, match="key"):
        Offer.from_wire({**spec.offers[0].to_wire(), "key": "../etc/passwd"})
    with pytest.raises(BadMessage, match="url"):
        ShipSpec.from_wire({**spec.to_wire(), "url": "file:///etc"})


def test_the_cache_is_where_the_configuration_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = MediaCache.from_config(
        config.load(defs=[f"netnode.cache_dir={tmp_path}/c", "netnode.cache_mb=3"])
    )
    assert (chosen.directory, chosen.bound_bytes) == (tmp_path / "c", 3 << 20)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert MediaCache.from_config(config.load()).directory == tmp_path / "xdg/lumiera/media"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert MediaCache.from_config(config.load()).directory == (Path.home() / ".cache/lumiera/media")


def test_media_travel_over_tls_to_a_node_that_trusts_the_farms_ca(tmp_path: Path) -> None:
    farm, other = make_pki(tmp_path / "pki")
    cert, key = farm.member("origin")
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    origin = random_file(tmp_path / "origin.bin")
    with MediaServer("127.0.0.1", ssl_context=serving) as server:
        offer = server.offer(media_of(origin))
        assert server.url.startswith("https://127.0.0.1:")
        with pytest.raises(MediaError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(
                MediaCache(tmp_path / "refused", 1 << 20),
                server,
                offer,
                ssl_context=ssl.create_default_context(cafile=other.ca_file),
            )
        trusting = ssl.create_default_context(cafile=farm.ca_file)
        path = fetch(MediaCache(tmp_path / "cache", 1 << 20), server, offer, ssl_context=trusting)
    assert path.read_bytes() == origin.read_bytes()
    assert os.listdir(tmp_path / "refused") == []


def test_the_serving_address_is_the_one_that_reaches_the_scheduler() -> None:
    assert address_towards("127.0.0.1", 8786) == "127.0.0.1"
    with pytest.raises(UsageError, match="no route"):
        address_towards("no-such-host.invalid")
