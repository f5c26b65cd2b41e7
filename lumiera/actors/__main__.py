"""``python -m lumiera.actors NAME RUNTIME_DIR INSTANCE``: how the supervisor spawns a subsystem.

Not for users: ``lumiera run NAME`` is the way to run one by hand.
"""

import sys
from pathlib import Path

from lumiera.actors.process import main
from lumiera.runtime_dir import RuntimeDir
from lumiera.subsystems import SUBSYSTEMS

if __name__ == "__main__":
    name, path, instance = sys.argv[1:4]
    rd = RuntimeDir(Path(path), instance, default_location=False)
    sys.exit(main(name, SUBSYSTEMS[name].module, rd))
