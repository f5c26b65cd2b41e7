"""docs/UIBUS.md's message tables, rendered from the declarations in :mod:`.uibus`.

``python -m lumiera.stage.gui.uibus_docs`` prints them; a test keeps the doc's
copy (between the ``uibus-tables`` markers) equal to this.
"""

from __future__ import annotations

import sys

from lumiera.stage.gui import uibus

BEGIN = "<!-- uibus-tables: begin (python -m lumiera.stage.gui.uibus_docs) -->"
END = "<!-- uibus-tables: end -->"


def markdown() -> str:
    """Both directions' tables: each kind's fields (``?``: optional), JSON types, and doc."""
    declared = uibus.schema()["kinds"]
    out: list[str] = []
    for up, title in ((False, "Down: GUI process → page"), (True, "Up: page → GUI process")):
        out += [f"### {title}", "", "| type | fields (`?`: optional) | what |", "|---|---|---|"]
        for name, kind in declared.items():
            if kind["up"] is not up:
                continue
            fields = ", ".join(
                f"`{f}{'' if spec['required'] else '?'}` {spec['type'].replace('|', ' or ')}"
                for f, spec in kind["fields"].items()
            )
            what = kind["doc"].replace("``", "`").replace(":data:", "")
            out.append(f"| `{name}` | {fields or '-'} | {what} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(f"{BEGIN}\n{markdown()}{END}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
