"""Redis memory with default retention: ``python -m bench.memory --help`` (the measurement is
``harness/memory.py``)."""

from harness.memory import main

if __name__ == "__main__":
    main()
