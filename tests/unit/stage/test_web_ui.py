"""The web UI plug-in's own decisions: when a browser is opened; the viewer found if installed."""

from __future__ import annotations

import pytest

from lumiera.stage import web


@pytest.mark.parametrize(
    ("setting", "environ", "opens"),
    [
        ("auto", {}, False),
        ("auto", {"DISPLAY": ""}, False),
        ("auto", {"DISPLAY": ":0"}, True),
        ("auto", {"WAYLAND_DISPLAY": "wayland-0"}, True),
        ("no", {"DISPLAY": ":0"}, False),
        ("yes", {}, True),
    ],
)
def test_a_browser_is_opened_when_asked_or_on_auto_only_where_a_display_is(setting, environ, opens):
    assert web.should_open_browser(setting, environ) is opens


def test_the_viewer_feed_is_found_when_its_module_is_installed():
    feed = web.viewer_factory()
    assert feed is not None and feed.__name__ == "ViewerFeed"
