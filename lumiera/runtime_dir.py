"""The instance's runtime directory: where it is, that it is safe, and its lock.

Resolution order: ``--runtime-dir``, ``$LUMIERA_RUNTIME_DIR``,
``$XDG_RUNTIME_DIR/lumiera/<instance>``, ``/tmp/lumiera-<uid>/<instance>``.
The directory (and a ``lumiera-<uid>`` parent we create) must be a real
directory owned by us with no group/world access. The supervisor holds
``lock`` with flock for its whole life: libzmq lets a second bind on an ipc
path succeed silently, so the lock is what makes a second ``up`` refuse.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from lumiera.errors import InstanceRunning, RuntimeDirError, UsageError

# Not starting with a dot: "." and ".." would name the parent directory itself.
INSTANCE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
DEFAULT_INSTANCE = "default"
# libzmq refuses ipc paths longer than this (sun_path is 108 bytes with the NUL).
MAX_IPC_PATH = 107
# Socket files of the bus; a running subsystem binds its own ``svc-<name>`` too.
SOCKET_NAMES = ("events", "publish", "control")
PID_FILE = "appstate.pid"
PID_TMP = f".{PID_FILE}.tmp"
# The instance's temporary data (render intermediates): created by the supervisor,
# removed with everything in it when the instance ends, emergency included.
TEMP_DIR = "tmp"
PARTIAL_MARK = "partial-"  # in the temp area: names a partial file being written
# Sockets a subsystem may bind: svc-<name> for direct calls, ring-<name>.* for ring wake-ups.
SERVICE_PREFIX = "svc-"
RING_PREFIX = "ring-"
# Set by the supervisor for the subsystem processes it spawns: its own pid.
ENV_SUPERVISOR_PID = "LUMIERA_SUPERVISOR_PID"
LOCK_FILE = "lock"
LOCK_RETRIES = 3
LOCK_RETRY_S = 0.005


def check_instance(name: str) -> str:
    if not INSTANCE_RE.fullmatch(name):
        raise UsageError(
            f"instance name {name!r}: use 1-64 of A-Z a-z 0-9 _ . - (not starting with . or -)"
        )
    return name


@dataclass(frozen=True)
class RuntimeDir:
    """Paths of one instance's runtime directory."""

    path: Path
    instance: str
    # Whether the default location was used (then the directory is ours to remove).
    default_location: bool

    def socket(self, name: str) -> Path:
        return self.path / name

    def endpoint(self, name: str) -> str:
        return f"ipc://{self.path / name}"

    @property
    def temp_dir(self) -> Path:
        return self.path / TEMP_DIR

    @property
    def pid_file(self) -> Path:
        return self.path / PID_FILE

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE


def resolve(instance: str = DEFAULT_INSTANCE, override: str | None = None) -> RuntimeDir:
    """Where the instance's runtime directory is (nothing is created or checked)."""
    check_instance(instance)
    explicit = override or os.environ.get("LUMIERA_RUNTIME_DIR")
    if explicit:
        return RuntimeDir(Path(explicit).absolute(), instance, False)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(xdg) / "lumiera" if xdg else Path(f"/tmp/lumiera-{os.getuid()}")
    return RuntimeDir(base / instance, instance, True)


def prepare(rd: RuntimeDir) -> None:
    """Create the directory (mode 0700) if needed and check that it is safe.

    Raises RuntimeDirError for a path that is not a directory, a symlink, not
    owned by us, group/world accessible, or too long for ipc socket paths.
    """
    longest = max(len(str(rd.socket(n))) for n in SOCKET_NAMES)
    if longest > MAX_IPC_PATH:
        raise RuntimeDirError(
            f"runtime directory {rd.path} is too long: ipc socket paths must be at most "
            f"{MAX_IPC_PATH} characters; choose a shorter --runtime-dir"
        )
    if rd.default_location:
        _make_private(rd.path.parent)
    _make_private(rd.path)


def _make_private(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeDirError(f"cannot create runtime directory {path}: {e.strerror}") from e
    check_private(path)


def check_private(path: Path) -> None:
    """Raise RuntimeDirError unless ``path`` is a real directory, ours, mode 0700 or stricter."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"runtime directory {path} is not a directory (or is a symlink)")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"runtime directory {path} is owned by uid {st.st_uid}, not us")
    if st.st_mode & 0o077:
        raise RuntimeDirError(
            f"runtime directory {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); it must be 0700"
        )


class InstanceLock:
    """The flock on ``<runtime dir>/lock``, held by the supervisor for its whole life.

    The kernel drops the lock when the holder dies, even by SIGKILL; so holding
    it proves every file in the directory belongs to a dead instance or to us.
    """

    def __init__(self, rd: RuntimeDir) -> None:
        self._rd = rd
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise InstanceRunning (waits at most a few ms).

        A tool probing with :func:`is_locked` holds a shared lock for a moment;
        a few quick retries keep that from being mistaken for a live instance.
        """
        for _ in range(LOCK_RETRIES - 1):
            try:
                self._acquire_once()
                return
            except InstanceRunning:
                time.sleep(LOCK_RETRY_S)
        self._acquire_once()

    def _acquire_once(self) -> None:
        path = self._rd.lock_file
        remade = 0
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                # The directory went between prepare() and here. An ending instance of
                # the same name (or its recorder) removes its *default* directory once it
                # is empty (remove_dir_if_empty): that one is made again, checked as
                # prepare() does. A directory the user named is never removed by lumiera:
                # whoever did it meant it, and it is not made again behind their back.
                remade += 1
                if not self._rd.default_location or remade > LOCK_RETRIES:
                    raise RuntimeDirError(
                        f"runtime directory {self._rd.path} disappeared while the instance "
                        "was starting"
                    ) from None
                prepare(self._rd)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise InstanceRunning(self._running_message()) from None
                raise
            # The previous holder may have unlinked the file between our open and
            # our flock: then we hold a lock on a dead inode. Try again.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)

    def _running_message(self) -> str:
        pid = read_pid(self._rd)
        who = f" (supervisor pid {pid})" if pid else ""
        return f"instance {self._rd.instance!r} is already running{who} in {self._rd.path}"

    def release(self, unlink: bool = True) -> None:
        """Remove the lock file (while still holding it) and drop the lock."""
        if self._fd is None:
            return
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self._rd.lock_file.unlink()
        os.close(self._fd)
        self._fd = None


def is_locked(rd: RuntimeDir) -> bool:
    """Whether a live supervisor holds the instance's lock (probe without taking it)."""
    try:
        fd = os.open(rd.lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_pid(rd: RuntimeDir) -> int | None:
    try:
        return int(rd.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(rd: RuntimeDir) -> None:
    tmp = rd.path / PID_TMP
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    tmp.replace(rd.pid_file)


def owned_by_instance(name: str) -> bool:
    """Whether a file name in the runtime directory is one an instance creates.

    Only these are ever removed: ``--runtime-dir`` may point at a directory that
    holds other programs' files too.
    """
    return (
        name in SOCKET_NAMES
        or name.startswith((SERVICE_PREFIX, RING_PREFIX))
        or name in (PID_FILE, PID_TMP, TEMP_DIR)
    )


def remove_instance_files(rd: RuntimeDir) -> list[str]:
    """Remove the instance's socket files, pid file and temp area. Call only holding the lock.

    Returns the names removed (for the log: at start, these are a dead instance's).
    """
    removed = []
    for name in sorted(os.listdir(rd.path)):
        if not owned_by_instance(name):
            continue
        path = rd.path / name
        with contextlib.suppress(FileNotFoundError):
            mode = path.lstat().st_mode
            if stat.S_ISSOCK(mode) or (stat.S_ISREG(mode) and name in (PID_FILE, PID_TMP)):
                path.unlink()
                removed.append(name)
            elif stat.S_ISDIR(mode) and name == TEMP_DIR:
                removed += remove_partials(path)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
    return removed


def process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a dead process not yet reaped,
    which /proc still lists)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "Z"


def partial_mark(pid: int, key: int) -> str:
    """The name of a marker (in the temp area) of a partial file a process is writing."""
    return f"{PARTIAL_MARK}{pid}-{key}"


def remove_partials(temp: Path) -> list[str]:
    """Remove the partial files (``.NAME.partial``) the instance's processes were writing
    when they died, as their markers in the temp area name them; the paths removed.

    The partial file of a marker whose writer (the pid in its name) still runs is
    kept: it is being written (a process that outlived its instance's end). So is
    one that a running process has open: another render to the same output name
    (another instance's, say) took the name over since the marker's writer died.
    """
    removed = []
    for mark in temp.glob(f"{PARTIAL_MARK}*"):
        writer = mark.name.removeprefix(PARTIAL_MARK).split("-")[0]
        if writer.isdigit() and process_runs(int(writer)):
            continue
        try:
            target = Path(mark.read_text().strip())
            if not (target.is_absolute() and target.name.startswith(".")):
                continue
            if target.name.endswith(".partial") and not held_open(target):
                target.unlink()
                removed.append(str(target))
        except (OSError, UnicodeDecodeError):
            continue  # gone already (its writer finished), or not ours to read
    return removed


def held_open(path: Path) -> bool:
    """Whether a running process of this user (this one too; others' /proc/PID/fd are
    closed to us) has the file ``path`` open. It reads every such process's open files:
    only when a partial file is found in the way (the cleanup after a crash, an
    encoder whose partial file is there already), never per frame."""
    try:
        st = path.stat()
    except OSError:
        return False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with os.scandir(f"/proc/{pid}/fd") as fds:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        held = os.stat(fd.path)  # the open file itself (the link followed)
                        if (held.st_ino, held.st_dev) == (st.st_ino, st.st_dev):
                            return True
        except OSError:
            continue  # gone, or not ours to look into
    return False


def service_name(subsystem: str) -> str:
    """The file name of a subsystem's service socket (direct calls): ``svc-<name>``."""
    return f"{SERVICE_PREFIX}{subsystem}"


def remove_service_socket(rd: RuntimeDir, subsystem: str, inode: int | None = None) -> bool:
    """Remove ``svc-<subsystem>`` if it is a socket (and, given ``inode``, still that one).

    The subsystem calls it at its end with the inode it bound (so it never
    removes a successor's); the supervisor calls it without, once the process
    is gone (a crash leaves the file). Returns whether a file was removed.
    """
    path = rd.socket(service_name(subsystem))
    try:
        st = path.lstat()
        if not stat.S_ISSOCK(st.st_mode) or (inode is not None and st.st_ino != inode):
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def remove_dir_if_empty(rd: RuntimeDir) -> None:
    """Remove a default-location runtime directory once nothing is left in it."""
    if rd.default_location:
        with contextlib.suppress(OSError):
            rd.path.rmdir()
