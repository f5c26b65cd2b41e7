"""The zygote on its own: a real forked process, no supervisor. (The whole path, from
``lumiera up`` to forked subsystems, is in tests/integration/test_zygote_e2e.py.)"""

from __future__ import annotations

import os

import pytest

from lumiera.appstate.zygote import EXIT_SETUP_FAILED, ForkedChild, Zygote, ZygoteError


def read_all(child: ForkedChild) -> str:
    assert child.stderr is not None
    chunks = []
    while data := child.stderr.read(65536):
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def zygote():
    z = Zygote.start(["json"])
    yield z
    z.close()


def test_a_forked_process_is_our_child_and_says_why_it_could_not_become_a_subsystem(
    zygote, tmp_path
):
    child = zygote.spawn("nosuch", str(tmp_path), "inst", {"LUMIERA_TEST_MARK": "1"})
    assert child.pid not in (os.getpid(), zygote.pid)
    # Re-parented to us (a subreaper) before the zygote answered: ours to wait for.
    assert child.wait(10) == EXIT_SETUP_FAILED
    err = read_all(child)
    assert "KeyError: 'nosuch'" in err  # no such subsystem: the traceback on its stderr
    assert zygote.broken is None  # the zygote itself goes on


def test_several_processes_one_after_the_other(zygote, tmp_path):
    children = [zygote.spawn("nosuch", str(tmp_path), f"i{k}", {}) for k in range(3)]
    assert len({c.pid for c in children}) == 3
    assert [c.wait(10) for c in children] == [EXIT_SETUP_FAILED] * 3
    for c in children:
        read_all(c)


def test_a_zygote_that_could_not_import_forks_nothing_and_says_why(tmp_path):
    z = Zygote.start(["lumiera.no_such_module"])
    try:
        with pytest.raises(ZygoteError, match="could not import: ModuleNotFoundError"):
            z.spawn("engine", str(tmp_path), "inst", {})
        assert z.broken is not None
        with pytest.raises(ZygoteError):  # broken stays broken: the supervisor execs
            z.spawn("engine", str(tmp_path), "inst", {})
    finally:
        z.close()


def test_a_zygote_that_died_is_broken_not_a_hang(tmp_path):
    z = Zygote.start(["json"])
    try:
        os.kill(z.pid, 9)
        with pytest.raises(ZygoteError, match="does not answer"):
            z.spawn("engine", str(tmp_path), "inst", {})
    finally:
        z.close()


def test_close_ends_and_reaps_the_zygote():
    z = Zygote.start(["json"])
    z.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(z.pid, os.WNOHANG)  # reaped already
