"""A render node's cache of media shipped by a render's origin (``--ship-media``).

The origin serves the session's media (:mod:`lumiera.vault.mediaserve`); each
node fetches a file it lacks once, in chunks, into its cache directory
(``[netnode] cache_dir``), bounded by ``[netnode] cache_mb``.

In the directory, for a content key ``K`` (the sha256 of the file)::

    K           the file, complete and checked; its mtime is the origin's
    K.partial   a download in progress (only while K.lock is held)
    K.lock      an flock: exclusive while K is downloaded or removed, shared while in use

Two node processes on one host may share the directory: the second to want a
file waits for the first's download and then finds it done. Least recently
used files (by atime, which every use sets) are swept beyond the bound, never
one whose lock someone holds: :func:`localized` holds a shared lock on each
file for as long as a render uses it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import http.client
import os
import ssl
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lumiera.bus.timeline import Timeline
from lumiera.config import Config
from lumiera.errors import MediaError
from lumiera.vault.mediaserve import KEY, Offer, ShipSpec, content_key

MIB = 1 << 20
PIECE = MIB  # a response is read this much at a time (the deadline checked in between)
ERROR_BODY = 4096  # at most this much of a refusal's reason is read
POLL_S = 0.02  # a wait for a lock another process holds looks again this often


class MediaCache:
    """Shipped media in ``directory``, kept within about ``bound_bytes`` (see the module doc).

    The bound is kept after each fetch by removing least recently used files;
    what is in use (locked) or was just fetched stays, even beyond it.
    """

    def __init__(self, directory: Path, bound_bytes: int) -> None:
        if bound_bytes < 1:
            raise ValueError("bound_bytes must be at least 1")
        self.directory = Path(directory)
        self.bound_bytes = bound_bytes

    @classmethod
    def from_config(cls, config: Config) -> MediaCache:
        """The cache ``[netnode] cache_dir`` and ``cache_mb`` say (empty: in $XDG_CACHE_HOME,
        if that is absolute, else ~/.cache)."""
        configured = config.get_str("netnode.cache_dir").strip()
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
        directory = Path(configured).expanduser() if configured else base / "lumiera" / "media"
        return cls(directory, config.get_int("netnode.cache_mb") * MIB)

    def path_of(self, key: str) -> Path:
        """Where the file of content key ``key`` (an Offer's: checked) is, or would be, cached."""
        return self.directory / key

    # -- fetching -------------------------------------------------------------------------

    def fetch(
        self,
        offer: Offer,
        url: str,
        token: str,
        *,
        chunk_bytes: int,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Path:
        """The cached file of ``offer``, fetched from the server at ``url`` if not cached yet.

        A cached file (its size and mtime the offer's) is marked used and returned
        without a request. Else, holding the key's lock (another process fetching
        it is waited for), it is downloaded ``chunk_bytes`` at a time, its size and
        sha256 checked against the offer, given the offer's mtime and put in place;
        then the cache is swept. All within ``timeout`` seconds.

        Raises MediaError naming the media and the url, and leaves no partial
        file, when: the server refuses (its status and reason: 401/403 a wrong
        token, 404 not offered, 409 the origin's file changed, 416 a bad range),
        the content is not the offer's, the disk is full (ENOSPC), the cache
        directory is unusable, the server cannot be reached or the time is up.
        """
        how = _How(url, token, chunk_bytes, time.monotonic() + timeout, ssl_context)
        path = self._get(offer, how)
        self.sweep(keep={offer.key})
        return path

    def _get(self, offer: Offer, how: _How) -> Path:
        """As :meth:`fetch`, without the sweep after."""
        path = self.path_of(offer.key)
        if _complete(path, offer):
            _touch(path)
            return path
        url, deadline = how.url, how.deadline
        where = f"media {offer.id}: fetching {url.rstrip('/')}/media/{offer.key}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = self._lock(offer.key, fcntl.LOCK_EX, deadline)
        except TimeoutError:
            raise MediaError(f"{where}: timed out waiting for another process's fetch") from None
        except OSError as e:
            raise MediaError(f"{where}: cache {self.directory}: {_why(e)}") from None
        try:
            if _complete(path, offer, verify=True):
                _touch(path)
                return path
            self.sweep(keep={offer.key}, room=offer.size)
            partial = path.with_name(f"{offer.key}.partial")
            try:
                _download(offer, how, partial)
                os.utime(partial, ns=(time.time_ns(), offer.mtime_ns))
                os.replace(partial, path)
            except BaseException as e:
                with contextlib.suppress(OSError):
                    partial.unlink()
                with contextlib.suppress(OSError):
                    self._lock_path(offer.key).unlink()  # held: nobody else has it
                if isinstance(e, MediaError):
                    raise MediaError(f"{where}: {e}") from None
                if isinstance(e, OSError | http.client.HTTPException):
                    raise MediaError(f"{where}: {_why(e, deadline)}") from None
                raise
            return path
        finally:
            os.close(lock)

    # -- locks and the sweep ----------------------------------------------------------------

    def _lock_path(self, key: str) -> Path:
        return self.directory / f"{key}.lock"

    def _lock(self, key: str, mode: int, deadline: float | None) -> int:
        """An fd holding the key's lock (``mode``); a None ``deadline``: do not wait.

        TimeoutError when another process holds it past ``deadline``. A lock file
        removed while we waited on it (the sweep) is opened again.
        """
        path = self._lock_path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if deadline is None or time.monotonic() >= deadline:
                            raise TimeoutError(f"{path} is held") from None
                        time.sleep(POLL_S)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the file we locked was removed meanwhile: lock its successor

    def sweep(self, keep: Collection[str] = (), room: int = 0) -> list[str]:
        """Remove least recently used files until they and ``room`` more bytes fit the bound.

        Never removes a file of ``keep`` nor one whose lock is held (in use or
        being fetched, by any process); removes left-over partial downloads and
        lock files of absent files nobody holds. Returns the keys of the files removed.
        """
        try:
            names = set(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        cached: list[tuple[int, int, str]] = []  # (atime, size, key)
        for name in names:
            key, _, suffix = name.partition(".")
            if KEY.fullmatch(key) and suffix == "partial":  # left by a process that died
                self._remove(key, name)
            elif KEY.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(self.directory / name)
                    cached.append((st.st_atime_ns, st.st_size, key))
        total = sum(size for _, size, _ in cached)
        removed = []
        for _, size, key in sorted(cached):
            if total + room <= self.bound_bytes:
                break
            if key not in keep and self._remove(key, key):
                total -= size
                removed.append(key)
        return removed

    def _remove(self, key: str, name: str) -> bool:
        """Remove file ``name`` of ``key`` (and the lock, if nothing else of ``key`` is left)
        if nobody holds the key's lock; whether it was removed."""
        try:
            fd = self._lock(key, fcntl.LOCK_EX, None)
        except OSError:  # held (TimeoutError), or the directory is unusable
            return False
        try:
            (self.directory / name).unlink(missing_ok=True)
            if not (self.directory / key).exists():  # held: a waiter opens its successor
                self._lock_path(key).unlink(missing_ok=True)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)


def _complete(path: Path, offer: Offer, verify: bool = False) -> bool:
    """Whether ``path`` is there with the offer's size and mtime; or, to ``verify``, with its
    size and content (another media of the same content fetched it). Else it is removed."""
    try:
        st = os.stat(path)
        if st.st_size == offer.size and st.st_mtime_ns == offer.mtime_ns:
            return True
        if verify and st.st_size == offer.size and content_key(path) == offer.key:
            return True
        if verify:
            path.unlink()
    except FileNotFoundError:
        pass
    return False


def _touch(path: Path) -> None:
    """Mark ``path`` used now (its atime; the mtime is the origin's and stays)."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))


def _why(e: BaseException, deadline: float | None = None) -> str:
    if isinstance(e, TimeoutError) or (deadline is not None and time.monotonic() >= deadline):
        return "timed out"
    if isinstance(e, OSError) and e.errno is not None:
        return f"{e.strerror or e} ({errno.errorcode.get(e.errno, e.errno)})"
    return str(e) or type(e).__name__


@dataclass(frozen=True)
class _How:
    """Where and how a fetch gets a file, and until when."""

    url: str
    token: str = field(repr=False)
    chunk_bytes: int
    deadline: float  # time.monotonic()
    ssl_context: ssl.SSLContext | None


def _download(offer: Offer, how: _How, partial: Path) -> None:
    """Write the offer's content into ``partial``, checked. MediaError, OSError, HTTPException."""
    parts, deadline = urlsplit(how.url), how.deadline
    host, port = parts.hostname or "", parts.port
    conn = (  # its timeout is set before each step (_remaining)
        http.client.HTTPSConnection(host, port, context=how.ssl_context)
        if parts.scheme == "https"
        else http.client.HTTPConnection(host, port)
    )
    route = f"{parts.path.rstrip('/')}/media/{offer.key}"
    digest = hashlib.sha256()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if offer.size:  # the space reserved up front: a full disk fails before any request
            try:
                os.posix_fallocate(fd, 0, offer.size)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
        offset = 0
        while offset < offer.size:
            want = min(how.chunk_bytes, offer.size - offset)
            _remaining(conn, deadline)
            conn.request(
                "GET",
                f"{route}?offset={offset}&length={want}",
                headers={"Authorization": f"Bearer {how.token}"},
            )
            answer = conn.getresponse()
            if answer.status != 200:
                reason = answer.read(ERROR_BODY).decode("utf-8", "replace").strip()
                raise MediaError(f"HTTP {answer.status} {answer.reason}: {reason}")
            length = int(answer.getheader("Content-Length") or "0")
            if not 0 < length <= want:
                raise MediaError(f"{length} bytes answered at {offset}, {want} asked")
            while length:
                _remaining(conn, deadline)
                piece = answer.read1(min(PIECE, length))
                if not piece:
                    raise MediaError(f"the answer at {offset} ended early")
                os.pwrite(fd, piece, offset)
                digest.update(piece)
                offset += len(piece)
                length -= len(piece)
            answer.read()  # b"": the answer is done, the connection free for the next
        os.ftruncate(fd, offer.size)
        os.fsync(fd)
    finally:
        os.close(fd)
        conn.close()
    if digest.hexdigest() != offer.key:
        raise MediaError(f"the content's sha256 is {digest.hexdigest()}, not the offer's")


def _remaining(conn: http.client.HTTPConnection, deadline: float) -> None:
    """Bound the connection's next socket operation by what is left of the time."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the fetch took too long")
    conn.timeout = left
    if conn.sock is not None:
        conn.sock.settimeout(left)


# -- the timeline -------------------------------------------------------------------------


def _offered(timeline: Timeline, spec: ShipSpec, within: tuple[int, int] | None) -> list[Offer]:
    """The offers of the media ``timeline``'s clips show (in frames ``within``, if given)."""
    clips = timeline.clips if within is None else timeline.clips_within(*within)
    used = {c.media for c in clips}
    return [o for o in spec.offers if o.id in used]


def _replaced(timeline: Timeline, cached: dict[str, Path]) -> Timeline:
    """``timeline`` with the media of ``cached`` at their cached file, with its identity."""
    media = list(timeline.media)
    for k, m in enumerate(media):
        if (path := cached.get(m.id)) is not None:
            st = os.stat(path)
            size, mtime_ns, inode = st.st_size, st.st_mtime_ns, st.st_ino
            media[k] = dataclasses.replace(
                m, path=str(path), size=size, mtime_ns=mtime_ns, inode=inode
            )
    return dataclasses.replace(timeline, media=tuple(media))


def localize(
    timeline: Timeline,
    spec: ShipSpec,
    cache: MediaCache,
    timeout: float,
    *,
    within: tuple[int, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Timeline:
    """``timeline`` with each offered media it uses replaced by its cached file.

    Fetches what is not cached (:meth:`MediaCache.fetch`), all within
    ``timeout``. Each such media gets the cached file's path and identity (its
    size, the origin's mtime, its inode), so :func:`~lumiera.vault.media.check_sources`
    passes and decoders check the right file; a media not offered is left as is.
    ``within`` (first, count): only the media shown in those frames;
    ``ssl_context``: the server's CA for an https url. Raises
    MediaError (see fetch; also an offer whose size or mtime is not the
    timeline's media's). Nothing holds the files afterwards: use :func:`localized`
    where another process's sweep could remove one before it is read.
    """
    with localized(timeline, spec, cache, timeout, within=within, ssl_context=ssl_context) as local:
        return local


@contextlib.contextmanager
def localized(
    timeline: Timeline,
    spec: ShipSpec,
    cache: MediaCache,
    timeout: float,
    *,
    within: tuple[int, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[Timeline]:
    """As :func:`localize`, holding each cached file (a shared lock) until the block ends.

    No sweep, in this process or another sharing the directory, removes them
    meanwhile. Errors as :func:`localize`.
    """
    how = _How(spec.url, spec.token, spec.chunk_bytes, time.monotonic() + timeout, ssl_context)
    held: dict[str, int] = {}  # key -> the fd of its shared lock
    try:
        cached = {}
        for offer in _offered(timeline, spec, within):
            media = timeline.media_by_id[offer.id]
            if (media.size, media.mtime_ns) != (offer.size, offer.mtime_ns):
                raise MediaError(f"media {offer.id}: the origin's offer is not the timeline's")
            if offer.key in held:  # another media of the same content: held already
                cached[offer.id] = cache.path_of(offer.key)
                continue
            while True:  # a sweep elsewhere may remove it between the fetch and the hold
                path = cache._get(offer, how)
                try:
                    fd = cache._lock(offer.key, fcntl.LOCK_SH, how.deadline)
                except (TimeoutError, OSError) as e:
                    raise MediaError(f"media {offer.id}: holding {path}: {_why(e)}") from None
                if path.is_file():
                    held[offer.key] = fd
                    cached[offer.id] = path
                    break
                os.close(fd)
                if time.monotonic() >= how.deadline:
                    raise MediaError(f"media {offer.id}: timed out: {path} is swept as fetched")
        cache.sweep()
        yield _replaced(timeline, cached)
    finally:
        for fd in held.values():
            os.close(fd)
