"""The runtime directory: where it is, that it is private, the instance lock, and cleanup."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumiera import runtime_dir
from lumiera.errors import InstanceRunning, RuntimeDirError, UsageError
from lumiera.runtime_dir import (
    InstanceLock,
    RuntimeDir,
    check_instance,
    is_locked,
    prepare,
    read_pid,
    remove_dir_if_empty,
    remove_instance_files,
    resolve,
    write_pid,
)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("LUMIERA_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return monkeypatch


@pytest.fixture
def lock(rd: RuntimeDir) -> Iterator[InstanceLock]:
    held = InstanceLock(rd)
    held.acquire()
    try:
        yield held
    finally:
        held.release()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@contextlib.contextmanager
def unix_socket(path: Path) -> Iterator[None]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield


# -- where it is ----------------------------------------------------------------------------


def test_an_explicit_runtime_dir_wins_over_every_environment_variable(no_env: pytest.MonkeyPatch):
    no_env.setenv("LUMIERA_RUNTIME_DIR", "/from/env")
    no_env.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    assert resolve("film", "/explicit") == RuntimeDir(Path("/explicit"), "film", False)


def test_lumiera_runtime_dir_wins_over_xdg_and_is_used_as_is(no_env: pytest.MonkeyPatch):
    no_env.setenv("LUMIERA_RUNTIME_DIR", "/from/env")
    no_env.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    assert resolve("film") == RuntimeDir(Path("/from/env"), "film", False)


def test_xdg_runtime_dir_holds_a_lumiera_directory_per_instance(no_env: pytest.MonkeyPatch):
    no_env.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    assert resolve("film") == RuntimeDir(Path("/run/user/1/lumiera/film"), "film", True)


def test_without_any_setting_the_runtime_dir_is_under_tmp_per_user(no_env: pytest.MonkeyPatch):
    rd = resolve()
    assert rd == RuntimeDir(Path(f"/tmp/lumiera-{os.getuid()}/default"), "default", True)


def test_empty_environment_variables_count_as_unset(no_env: pytest.MonkeyPatch):
    no_env.setenv("LUMIERA_RUNTIME_DIR", "")
    no_env.setenv("XDG_RUNTIME_DIR", "")
    assert resolve("x").path == Path(f"/tmp/lumiera-{os.getuid()}/x")


def test_a_relative_runtime_dir_is_made_absolute(no_env: pytest.MonkeyPatch, tmp_path: Path):
    no_env.chdir(tmp_path)
    assert resolve("x", "rel/dir").path == tmp_path / "rel" / "dir"


def test_the_socket_endpoints_and_files_live_in_the_runtime_dir():
    rd = RuntimeDir(Path("/r/x"), "x", False)
    assert rd.endpoint("control") == "ipc:///r/x/control"
    assert rd.socket("events") == Path("/r/x/events")
    assert rd.pid_file == Path("/r/x/appstate.pid")
    assert rd.lock_file == Path("/r/x/lock")


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "a b", "x" * 65, "é"])
def test_a_bad_instance_name_is_a_usage_error(name: str, no_env: pytest.MonkeyPatch):
    with pytest.raises(UsageError, match="instance name"):
        resolve(name)


def test_an_instance_name_of_64_allowed_characters_is_accepted():
    name = "Az09_.-" + "x" * 57
    assert check_instance(name) == name


@pytest.mark.parametrize("name", [".", ".."])
def test_an_instance_name_that_is_a_path_step_is_refused(name: str, no_env: pytest.MonkeyPatch):
    no_env.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    with pytest.raises(UsageError):
        resolve(name)


# -- that it is private -----------------------------------------------------------------------


def test_prepare_creates_the_directory_private(tmp_path: Path):
    rd = RuntimeDir(tmp_path / "new", "x", False)
    prepare(rd)
    assert rd.path.is_dir()
    assert mode(rd.path) == 0o700


def test_prepare_creates_the_default_parent_private_too(no_env: pytest.MonkeyPatch, tmp_path: Path):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    no_env.setenv("XDG_RUNTIME_DIR", str(xdg))
    prepare(resolve("film"))
    assert mode(xdg / "lumiera") == 0o700
    assert mode(xdg / "lumiera" / "film") == 0o700


def test_prepare_accepts_an_existing_private_directory(rd: RuntimeDir):
    prepare(rd)
    prepare(rd)
    assert mode(rd.path) == 0o700


def test_prepare_refuses_a_directory_others_can_read(tmp_path: Path):
    path = tmp_path / "open"
    path.mkdir()
    path.chmod(0o755)
    with pytest.raises(RuntimeDirError, match=r"accessible by group or others \(mode 0755\)"):
        prepare(RuntimeDir(path, "x", False))


def test_prepare_refuses_a_default_parent_others_can_read(
    no_env: pytest.MonkeyPatch, tmp_path: Path
):
    (tmp_path / "lumiera").mkdir(mode=0o755)
    (tmp_path / "lumiera").chmod(0o755)
    no_env.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(RuntimeDirError, match="lumiera is accessible by group or others"):
        prepare(resolve("film"))
    assert not (tmp_path / "lumiera" / "film").exists()


def test_prepare_refuses_a_symlink_even_to_a_private_directory(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(RuntimeDirError, match="is not a directory \\(or is a symlink\\)"):
        prepare(RuntimeDir(link, "x", False))


def test_prepare_refuses_a_file_where_the_directory_should_be(tmp_path: Path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(RuntimeDirError, match="cannot create runtime directory"):
        prepare(RuntimeDir(path, "x", False))


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a directory away")
def test_prepare_refuses_a_directory_owned_by_someone_else(tmp_path: Path):
    path = tmp_path / "theirs"
    path.mkdir(mode=0o700)
    os.chown(path, 12345, 12345)
    with pytest.raises(RuntimeDirError, match="is owned by uid 12345, not us"):
        prepare(RuntimeDir(path, "x", False))


def test_prepare_refuses_a_path_too_long_for_ipc_sockets_and_creates_nothing(tmp_path: Path):
    path = tmp_path / ("d" * (runtime_dir.MAX_IPC_PATH - len(str(tmp_path)) - len("/control") + 1))
    with pytest.raises(RuntimeDirError, match="is too long"):
        prepare(RuntimeDir(path, "x", False))
    assert not path.exists()


def test_prepare_accepts_a_path_exactly_as_long_as_ipc_allows(tmp_path: Path):
    path = tmp_path / ("d" * (runtime_dir.MAX_IPC_PATH - len(str(tmp_path)) - len("/control") - 1))
    prepare(RuntimeDir(path, "x", False))
    assert len(str(path / "control")) == runtime_dir.MAX_IPC_PATH


# -- the instance lock ---------------------------------------------------------------------------


def test_a_second_lock_on_a_running_instance_is_refused(rd: RuntimeDir, lock: InstanceLock):
    with pytest.raises(InstanceRunning) as err:
        InstanceLock(rd).acquire()
    assert str(err.value) == f"instance {rd.instance!r} is already running in {rd.path}"


def test_the_refusal_names_the_supervisor_pid_when_the_pid_file_has_it(
    rd: RuntimeDir, lock: InstanceLock
):
    write_pid(rd)
    with pytest.raises(
        InstanceRunning, match=f"already running \\(supervisor pid {os.getpid()}\\)"
    ):
        InstanceLock(rd).acquire()


def test_is_locked_tells_whether_a_supervisor_holds_the_lock(rd: RuntimeDir):
    assert not is_locked(rd)
    held = InstanceLock(rd)
    held.acquire()
    assert is_locked(rd)
    held.release()
    assert not is_locked(rd)


def test_release_unlinks_the_lock_file_and_the_instance_can_be_locked_again(rd: RuntimeDir):
    first = InstanceLock(rd)
    first.acquire()
    assert rd.lock_file.exists()
    first.release()
    assert not rd.lock_file.exists()

    second = InstanceLock(rd)
    second.acquire()
    assert is_locked(rd)
    second.release()


def test_release_may_keep_the_lock_file(rd: RuntimeDir):
    held = InstanceLock(rd)
    held.acquire()
    held.release(unlink=False)
    assert rd.lock_file.exists()
    assert not is_locked(rd)
    held.release()  # a second release does nothing
    assert rd.lock_file.exists()


def test_a_directory_removed_between_prepare_and_the_lock_is_made_again(tmp_path: Path):
    # An ending instance of the same name removes its empty default directory: a
    # starting one that prepared it a moment before still gets its lock, in a private
    # directory made again.
    rd = RuntimeDir(tmp_path / "lumiera-t" / "x", "x", default_location=True)
    prepare(rd)
    remove_dir_if_empty(rd)
    assert not rd.path.exists()
    lock = InstanceLock(rd)
    lock.acquire()
    try:
        assert is_locked(rd)
        assert stat.S_IMODE(rd.path.stat().st_mode) == 0o700
    finally:
        lock.release()


def test_a_directory_the_user_named_that_disappears_is_an_error_and_not_made_again(
    tmp_path: Path,
):
    rd = RuntimeDir(tmp_path / "mine", "x", default_location=False)
    prepare(rd)
    rd.path.rmdir()  # not lumiera's doing: it never removes a directory the user named
    with pytest.raises(RuntimeDirError, match="disappeared while the instance was starting"):
        InstanceLock(rd).acquire()
    assert not rd.path.exists()


def test_the_lock_file_is_private(rd: RuntimeDir, lock: InstanceLock):
    assert mode(rd.lock_file) == 0o600


def test_a_tool_probing_the_lock_for_a_moment_is_not_taken_for_a_running_instance(
    rd: RuntimeDir, monkeypatch: pytest.MonkeyPatch
):
    rd.lock_file.touch()
    probe = os.open(rd.lock_file, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the probe lets go while the supervisor waits
        slept.append(seconds)
        os.close(probe)

    monkeypatch.setattr(runtime_dir, "time", types.SimpleNamespace(sleep=sleep))
    held = InstanceLock(rd)
    held.acquire()
    assert slept == [runtime_dir.LOCK_RETRY_S]
    assert is_locked(rd)
    held.release()


def test_a_shared_lock_held_longer_than_the_retries_is_a_running_instance(
    rd: RuntimeDir, monkeypatch: pytest.MonkeyPatch
):
    rd.lock_file.touch()
    probe = os.open(rd.lock_file, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    monkeypatch.setattr(runtime_dir, "time", types.SimpleNamespace(sleep=lambda _s: None))
    try:
        with pytest.raises(InstanceRunning):
            InstanceLock(rd).acquire()
    finally:
        os.close(probe)


# -- pid file and cleanup ---------------------------------------------------------------------


def test_the_pid_file_holds_our_pid_privately(rd: RuntimeDir):
    assert read_pid(rd) is None
    write_pid(rd)
    assert read_pid(rd) == os.getpid()
    assert mode(rd.pid_file) == 0o600
    assert sorted(p.name for p in rd.path.iterdir()) == ["appstate.pid"]


def test_a_garbled_pid_file_reads_as_no_pid(rd: RuntimeDir):
    rd.pid_file.write_text("not a pid\n")
    assert read_pid(rd) is None


def test_cleanup_removes_socket_files_and_the_pid_files_but_nothing_else(rd: RuntimeDir):
    write_pid(rd)
    (rd.path / ".appstate.pid.tmp").write_text("1\n")
    (rd.path / "notes.txt").write_text("keep me")
    rd.lock_file.touch()
    with unix_socket(rd.socket("control")), unix_socket(rd.socket("events")):
        removed = remove_instance_files(rd)

    assert sorted(removed) == [".appstate.pid.tmp", "appstate.pid", "control", "events"]
    assert sorted(p.name for p in rd.path.iterdir()) == ["lock", "notes.txt"]


def test_cleanup_leaves_dot_files_and_dot_directories_of_other_programs_alone(rd: RuntimeDir):
    (rd.path / ".bashrc").write_text("alias ll='ls -l'\n")
    (rd.path / ".config").mkdir()
    write_pid(rd)

    assert remove_instance_files(rd) == ["appstate.pid"]
    assert sorted(p.name for p in rd.path.iterdir()) == [".bashrc", ".config"]


def test_cleanup_of_an_empty_directory_removes_nothing(rd: RuntimeDir):
    assert remove_instance_files(rd) == []
    assert rd.path.is_dir()


def test_a_default_location_directory_is_removed_once_empty(tmp_path: Path):
    rd = RuntimeDir(tmp_path / "film", "film", True)
    rd.path.mkdir()
    remove_dir_if_empty(rd)
    assert not rd.path.exists()


def test_a_default_location_directory_that_is_not_empty_is_kept(tmp_path: Path):
    rd = RuntimeDir(tmp_path / "film", "film", True)
    rd.path.mkdir()
    (rd.path / "lock").touch()
    remove_dir_if_empty(rd)
    assert rd.path.is_dir()


def test_an_explicit_runtime_directory_is_never_removed(tmp_path: Path):
    rd = RuntimeDir(tmp_path / "mine", "x", False)
    rd.path.mkdir()
    remove_dir_if_empty(rd)
    assert rd.path.is_dir()


def test_a_zombie_does_not_run_and_neither_does_a_pid_that_is_gone():
    assert runtime_dir.process_runs(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited, not reaped yet: listed in /proc, a zombie
        if Path(f"/proc/{child.pid}/stat").read_text().split(") ", 1)[1][0] == "Z":
            break
        time.sleep(0.01)
    assert not runtime_dir.process_runs(child.pid)
    child.wait()
    assert not runtime_dir.process_runs(child.pid)
    assert not runtime_dir.process_runs(2**22 + 7)
