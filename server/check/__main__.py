"""`python -m server.check [--json] [--workers N]`: the same as `seatmap check`."""

import sys

from . import main

sys.exit(main())
