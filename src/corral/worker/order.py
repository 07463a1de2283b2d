"""Which queue gets first pick of a worker's free slots: strict order or weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corral.errors import ConfigError


class QueueOrder:
    """Which queue gets first pick of free slots: fixed order (strict) or smooth weighted
    round-robin, so a low tier keeps progressing under a flood of high-tier work."""

    def __init__(self, queues: Sequence[str], weights: Mapping[str, int] | None) -> None:
        self.queues = list(queues)
        unknown = set(weights or {}) - set(queues)
        if unknown:
            raise ConfigError(f"weights name queues this worker does not serve: {sorted(unknown)}")
        self.weights = {q: int((weights or {}).get(q, 1)) for q in queues}
        if any(w <= 0 for w in self.weights.values()):
            raise ConfigError(f"queue weights must be positive integers, got {self.weights}")
        self.weighted = weights is not None
        self._current = dict.fromkeys(queues, 0)

    def next(self) -> list[str]:
        if not self.weighted or len(self.queues) == 1:
            return self.queues
        total = sum(self.weights.values())
        for q in self.queues:
            self._current[q] += self.weights[q]
        first = max(self.queues, key=lambda q: self._current[q])
        self._current[first] -= total
        return [first, *(q for q in self.queues if q != first)]
