"""The UI as a plug-in: found by its entry point name, or a clear error naming the installed."""

from __future__ import annotations

import pytest

from lumiera.errors import ConfigError
from lumiera.stage.gui import plugin
from lumiera.stage.gui.plugin import UserInterface


def test_the_web_ui_is_installed_as_a_plug_in():
    assert "web" in plugin.names()
    cls = plugin.load("web")
    assert issubclass(cls, UserInterface)
    assert cls.__module__.startswith("lumiera.stage.web")


def test_an_unknown_ui_is_a_config_error_naming_the_installed_ones():
    with pytest.raises(ConfigError, match=r"\[gui\] ui = tui: no such user interface") as err:
        plugin.load("tui")
    assert "web" in str(err.value)
