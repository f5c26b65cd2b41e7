"""docs/PROTOCOL.md's event tables are the declarations, rendered: they cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from lumiera.bus import event_docs
from lumiera.bus.events import main

PROTOCOL = Path(__file__).resolve().parents[3] / "docs" / "PROTOCOL.md"


def test_protocol_md_holds_exactly_the_tables_rendered_from_the_declarations():
    written = event_docs.between_markers(PROTOCOL.read_text(encoding="utf-8"))
    assert written == event_docs.markdown(), (
        "docs/PROTOCOL.md is out of step with lumiera/bus/topics.py; regenerate it with "
        "`python -m lumiera.bus.events --markdown --update docs/PROTOCOL.md`"
    )


def test_the_tables_name_every_topic_body_and_field():
    table = event_docs.markdown()
    for needle in ("`stats.<ring>`", "| RingStats |", "`consumers?`: list of RingConsumer"):
        assert needle in table
    assert "| `ext.<anything>` | ExtBody |" in table


def test_the_tool_prints_the_tables_and_rewrites_them_between_the_markers(tmp_path, capsys):
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == event_docs.markdown()
    doc = tmp_path / "P.md"
    doc.write_text(f"before\n{event_docs.BEGIN}\nstale\n{event_docs.END}\nafter\n")
    assert main(["--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith(f"{event_docs.END}\nafter\n")
    assert event_docs.between_markers(text) == event_docs.markdown()


def test_a_document_without_the_markers_is_refused():
    with pytest.raises(ValueError, match=r"no .* in the document"):
        event_docs.replace_between_markers("no markers here", "table")
