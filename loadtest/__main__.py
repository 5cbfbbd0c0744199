"""`python -m loadtest <command>`: the same as the `seatmap-loadtest` script."""

import sys

from .cli import main

if __name__ == "__main__":  # helper processes re-import this module under another name
    sys.exit(main())
