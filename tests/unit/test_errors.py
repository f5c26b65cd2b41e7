"""The errors: standard-library meanings, wire codes, and the protocol's table of them."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from lumiera import errors
from lumiera.bus.client import ControlClient
from lumiera.errors import (
    EngineSilent,
    LumieraError,
    RenderFailed,
    RenderStopped,
    RequestTimeout,
    RingTimeout,
    Unreachable,
    from_wire,
)
from lumiera.runtime_dir import InstanceLock, RuntimeDir, prepare

PROTOCOL = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"
TIMEOUTS = [RequestTimeout, RingTimeout, Unreachable, EngineSilent]


def all_error_classes() -> list[type[LumieraError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, LumieraError) and cls.__module__ == errors.__name__
    ]


@pytest.mark.parametrize("cls", TIMEOUTS, ids=lambda c: c.__name__)
def test_one_except_timeouterror_catches_every_bounded_wait_that_ran_out(
    cls: type[LumieraError],
) -> None:
    with pytest.raises(TimeoutError) as caught:
        raise cls("no answer within 1 s")
    assert isinstance(caught.value, LumieraError)
    assert str(caught.value) == "no answer within 1 s"  # not OSError's "[Errno ...]" form


def test_errors_that_are_not_about_time_are_no_timeouterrors() -> None:
    timeouts = {cls for cls in all_error_classes() if issubclass(cls, TimeoutError)}
    assert {errors.NotRunning, errors.SubsystemGone, errors.Unavailable}.isdisjoint(timeouts)
    assert all(re.search("Timeout|Unreachable|Silent", cls.__name__) for cls in timeouts)


@pytest.mark.parametrize("code", ["timeout", "ring_timeout", "engine_silent"])
def test_a_timeout_that_came_over_the_wire_is_a_timeouterror_too(code: str) -> None:
    assert isinstance(from_wire(code, "late"), TimeoutError)


def test_render_failures_are_one_family_with_codes_of_their_own() -> None:
    err = from_wire("render_stopped", "the render was stopped")
    assert type(err) is RenderStopped and isinstance(err, RenderFailed)
    assert str(err) == "the render was stopped"
    family = [cls for cls in all_error_classes() if issubclass(cls, RenderFailed)]
    assert len({cls.code for cls in family}) == len(family) == 5


def test_every_error_class_has_a_code_of_its_own() -> None:
    classes = all_error_classes()
    assert len({cls.code for cls in classes}) == len(classes)


def _protocol_codes() -> tuple[set[str], str]:
    """The codes in the table of section 9, and the prose about codes that never travel."""
    text = PROTOCOL.read_text()
    section = text.split("## 9. Error codes", 1)[1].split("\n## ", 1)[0]
    table = {
        code
        for line in section.splitlines()
        if line.startswith("| `")
        for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])
    }
    return table, section


def test_docs_protocol_lists_every_error_code() -> None:
    table, section = _protocol_codes()
    missing = sorted(set(errors.WIRE_CODES) - table)
    assert not missing, f"docs/PROTOCOL.md section 9 lacks a row for {missing}"
    never_sent = {cls.code for cls in all_error_classes()} - set(errors.WIRE_CODES)
    unmentioned = sorted(code for code in never_sent if f"`{code}`" not in section)
    assert not unmentioned, f"docs/PROTOCOL.md section 9 does not mention {unmentioned}"


@pytest.fixture
def silent_instance(rd: RuntimeDir) -> Iterator[RuntimeDir]:
    """A locked runtime directory whose ``control`` socket takes requests and never answers."""
    prepare(rd)
    lock = InstanceLock(rd)
    lock.acquire()
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(rd.endpoint("control"))
        yield rd
    finally:
        sock.close(linger=0)
        rd.socket("control").unlink(missing_ok=True)
        lock.release()


def test_a_client_that_gets_no_reply_raises_a_timeouterror(silent_instance: RuntimeDir) -> None:
    with (
        ControlClient(silent_instance, timeout=0.05) as client,
        pytest.raises(TimeoutError, match="no reply from 'appstate'"),
    ):
        client.request("appstate", "ping")
