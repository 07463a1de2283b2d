"""Run the benchmark suite: ``python -m bench [--jobs N] [--runs R]``."""

from bench.drain import main

main()
