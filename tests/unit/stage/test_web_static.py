"""The web UI's pages are files of the package: each one a page or module names is there.

No build step and no CDN: index.html loads app.js, which imports the others by
relative path; a file missing from the package (or a name misspelt) would be a
blank page, found only in a browser. This finds it without one.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

STATIC = Path(str(files("lumiera.stage.web") / "static"))
# import x from "./x.js";  import { a } from "./x.js";  import("./x.js")
IMPORTS = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(\s*)["'](\./[^"']+)["']""")
HTML_REFS = re.compile(r"""\b(?:src|href)="([^"#:]+)\"""")


def test_every_file_a_page_or_module_names_is_in_the_package():
    named: dict[str, str] = {}
    for ref in HTML_REFS.findall((STATIC / "index.html").read_text()):
        named[ref] = "index.html"
    for module in STATIC.glob("*.js"):
        for ref in IMPORTS.findall(module.read_text()):
            named[ref.removeprefix("./")] = module.name
    missing = {ref: by for ref, by in named.items() if not (STATIC / ref).is_file()}
    assert not missing, f"named but not in {STATIC}: {missing}"
    assert {"app.js", "style.css"} <= named.keys()
    assert {"uibus.js", "dashboard.js", "timeline.js", "log.js", "viewer.js"} <= named.keys()


def test_nothing_is_fetched_from_another_origin():
    for path in STATIC.iterdir():
        text = path.read_text()
        found = re.search(r"""["'(`][ \t]*(?:https?:)?//\w""", text)
        assert found is None, f"{path.name} names a URL: {found and found[0]}"
