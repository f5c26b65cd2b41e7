"""``python -m lumiera.actors NAME RUNTIME_DIR INSTANCE``: how the supervisor spawns a subsystem.

Not for users: ``lumiera run NAME`` is the way to run one by hand.
"""

import logging
import os
import sys
from pathlib import Path

from lumiera.actors.process import main
from lumiera.runtime_dir import RuntimeDir
from lumiera.subsystems import SUBSYSTEMS

if __name__ == "__main__":
    name, path, instance = sys.argv[1:4]
    rd = RuntimeDir(Path(path), instance, default_location=False)
    code = main(name, SUBSYSTEMS[name].module, rd)
    # The subsystem closed its files, sockets and rings in order before main()
    # returned. The interpreter's own teardown (unloading numpy, PyAV, ...) would
    # add 20-40 ms to every stop, one after the other in the shutdown order.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
