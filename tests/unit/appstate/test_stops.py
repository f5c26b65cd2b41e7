"""The supervisor's stops: signals and other threads' requests, one wake-up pipe."""

from __future__ import annotations

import select
import threading

from lumiera.appstate.stops import Stops


def test_a_request_from_another_thread_wakes_the_loop_and_is_taken_once():
    stops = Stops()
    r = stops.install()
    try:
        asked = threading.Thread(target=stops.request, args=("the job is done",))
        asked.start()
        asked.join()
        assert select.select([r], [], [], 5)[0] == [r]
        assert stops.take() == ([], ["the job is done"])
        assert stops.take() == ([], [])
    finally:
        stops.uninstall()


def test_a_request_before_install_or_after_uninstall_is_refused():
    stops = Stops()
    assert stops.request("too early") is False
    stops.install()
    stops.uninstall()
    assert stops.request("too late") is False
