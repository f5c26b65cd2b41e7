"""``python -m lumiera.actors NAME RUNTIME_DIR INSTANCE``: how the supervisor spawns a subsystem.

Not for users: ``lumiera run NAME`` is the way to run one by hand. A
subsystem forked by the zygote (:mod:`lumiera.appstate.zygote`) runs
:func:`run` as well.
"""

import logging
import os
import sys
from pathlib import Path

from lumiera.actors.process import main
from lumiera.runtime_dir import RuntimeDir
from lumiera.subsystems import SUBSYSTEMS


def run(name: str, path: str, instance: str) -> int:
    """Run subsystem ``name`` of the instance in ``path``; its exit code, output flushed."""
    rd = RuntimeDir(Path(path), instance, default_location=False)
    code = main(name, SUBSYSTEMS[name].module, rd)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    # The subsystem closed its files, sockets and rings in order before main()
    # returned. The interpreter's own teardown (unloading numpy, PyAV, ...) would
    # add 20-40 ms to every stop, one after the other in the shutdown order.
    os._exit(run(*sys.argv[1:4]))
