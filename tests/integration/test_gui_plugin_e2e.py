"""The gui subsystem loads its front-end by name: an unknown one fails the start clearly."""

from __future__ import annotations

import pytest

from lumiera.testing import Instance

pytestmark = pytest.mark.integration


def test_an_unknown_ui_name_fails_the_start_clearly_and_everything_ends_in_order(tmp_path):
    with Instance([str(tmp_path / "edit.lum")], defs=["gui.ui=tui"]) as inst:
        code = inst.wait(30)
        out = inst.output()
    assert code == 1, out
    assert "[gui] ui = tui: no such user interface (installed: web" in out
