"""The chaos soak: ``python -m bench.chaos --help`` (the harness is ``harness/chaos.py``)."""

import sys

from harness.chaos import main

if __name__ == "__main__":
    sys.exit(main())
