"""How a worker shares its free slots among the queues it serves: strict order or by weight.

Strict: every free slot goes to the first queue that has work; a later queue gets only what the
earlier ones left unclaimed. Weighted: slots are handed out one at a time by start-time fair
queueing, so completions follow the weights at any concurrency (a slot given to a queue that
turns out to have nothing is handed back, and that queue's credit does not pile up while it is
idle). The order only decides; the fetch loop claims what it says.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from corral.errors import ConfigError


class QueueOrder:
    """Which queue gets how many of a worker's free slots."""

    def __init__(self, queues: Sequence[str], weights: Mapping[str, int] | None) -> None:
        self.queues = list(queues)
        unknown = set(weights or {}) - set(queues)
        if unknown:
            raise ConfigError(f"weights name queues this worker does not serve: {sorted(unknown)}")
        self.weights = {q: int((weights or {}).get(q, 1)) for q in queues}
        if any(w <= 0 for w in self.weights.values()):
            raise ConfigError(f"queue weights must be positive integers, got {self.weights}")
        self.weighted = weights is not None and len(self.queues) > 1
        # virtual time per queue: slots taken / weight, the smallest is served next
        self._vtime = dict.fromkeys(queues, 0.0)

    def plan(self, slots: int, skip: Collection[str] = ()) -> dict[str, int]:
        """Share ``slots`` among the queues not in ``skip`` (those found empty this pass)."""
        candidates = [q for q in self.queues if q not in skip]
        if slots <= 0 or not candidates:
            return {}
        if not self.weighted:
            return {candidates[0]: slots}
        shares = dict.fromkeys(candidates, 0)
        vtime = {q: self._vtime[q] for q in candidates}
        for _ in range(slots):
            q = min(candidates, key=vtime.__getitem__)  # ties go to the earlier queue
            shares[q] += 1
            vtime[q] += 1.0 / self.weights[q]
        self._vtime.update(vtime)
        return {q: n for q, n in shares.items() if n}

    def settle(self, queue: str, planned: int, taken: int) -> None:
        """A queue took ``taken`` of its ``planned`` slots: hand back the credit of the rest,
        and bring an idle queue up to the others so it cannot burst ahead when work returns."""
        if not self.weighted or taken >= planned:
            return
        self._vtime[queue] -= (planned - taken) / self.weights[queue]
        busy = [v for q, v in self._vtime.items() if q != queue]
        if busy:
            self._vtime[queue] = max(self._vtime[queue], min(busy))
