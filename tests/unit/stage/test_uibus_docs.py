"""docs/UIBUS.md's message tables are the declarations' own (they cannot drift)."""

from __future__ import annotations

from pathlib import Path

from lumiera.stage.gui import uibus
from lumiera.stage.gui.uibus_docs import BEGIN, END, markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "UIBUS.md"


def test_the_doc_holds_the_tables_rendered_from_the_declarations():
    text = DOC.read_text()
    assert BEGIN in text and END in text
    between = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert between.strip() == markdown().strip()


def test_the_tables_name_every_kind_and_field():
    rendered = markdown()
    for name, cls in uibus.KINDS.items():
        assert f"| `{name}` |" in rendered
        for field in cls.__dataclass_fields__:  # type: ignore[attr-defined]
            assert f"`{field}" in rendered, (name, field)
