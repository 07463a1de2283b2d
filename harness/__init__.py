"""Test and benchmark harnesses shared by ``tests/`` and ``bench/`` (not shipped): the chaos
soak (servers and worker processes to kill, a trace of every execution, the accounting), and the
memory measurement. Kept apart so that neither the tests nor the benchmarks import the other."""
