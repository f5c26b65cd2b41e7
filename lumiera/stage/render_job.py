"""The built-in script of ``lumiera render``: render the session to a file, then end.

Run by the Script runner (``lumiera up SESSION --headless --script`` this
file); the job comes in the environment variable ``LUMIERA_RENDER_JOB`` as a
JSON object ``{"output", "first", "count", "codec"}``. A failed render raises,
so ``lumiera up`` exits 1 and no file is left under the output's name.
"""

from __future__ import annotations

import json
import os

from lumiera import api

ENV_JOB = "LUMIERA_RENDER_JOB"


def main() -> None:
    job = json.loads(os.environ[ENV_JOB])
    with api.app() as app:
        done = app.render(
            job["output"], first=job.get("first"), count=job.get("count"), codec=job["codec"]
        )
    print(
        f"rendered {done['frames']} frames to {done['output']} "
        f"in {done['seconds']:.2f} s ({done['fps']:.1f} fps)"
    )


if __name__ == "__main__":
    main()
