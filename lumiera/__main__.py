"""``python -m lumiera``: the same as the ``lumiera`` console script."""

import sys

from lumiera.cli import main

sys.exit(main())
