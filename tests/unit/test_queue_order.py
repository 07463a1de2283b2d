from collections import Counter

import pytest

from corral import ConfigError
from corral.worker import QueueOrder


def test_strict_order_gives_every_slot_to_the_first_queue_with_work() -> None:
    order = QueueOrder(["critical", "high", "low"], None)
    assert order.plan(7) == {"critical": 7}
    assert order.plan(7, skip={"critical"}) == {"high": 7}
    assert order.plan(7, skip={"critical", "high", "low"}) == {}
    assert order.plan(0) == {}


@pytest.mark.parametrize("slots", [1, 3, 10, 50])
def test_weighted_shares_follow_the_weights_whatever_the_slice(slots: int) -> None:
    order = QueueOrder(
        ["critical", "high", "standard", "low"], {"critical": 8, "high": 4, "standard": 2, "low": 1}
    )
    taken: Counter[str] = Counter()
    for _ in range(3000 // slots):
        for queue, n in order.plan(slots).items():
            order.settle(queue, n, n)
            taken[queue] += n
    total = sum(taken.values())
    for queue, weight in order.weights.items():
        assert abs(taken[queue] / total - weight / 15) < 0.005, (queue, taken)


def test_unused_slots_are_handed_back_and_an_idle_queue_does_not_burst_later() -> None:
    order = QueueOrder(["high", "low"], {"high": 3, "low": 1})
    for _ in range(100):  # low has nothing for a while: high takes everything
        plan = order.plan(4)
        order.settle("high", plan.get("high", 0), plan.get("high", 0))
        if plan.get("low"):
            order.settle("low", plan["low"], 0)
            assert order.plan(plan["low"], skip={"low"}) == {"high": plan["low"]}
    # low has work again: it gets its share, not the 100 turns it missed
    taken: Counter[str] = Counter()
    for _ in range(40):
        for queue, n in order.plan(4).items():
            order.settle(queue, n, n)
            taken[queue] += n
    assert abs(taken["low"] - 40) <= 1, taken


def test_weights_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        QueueOrder(["a"], {"a": 0})


def test_weights_for_queues_not_served_are_refused() -> None:
    with pytest.raises(ConfigError, match="critcal"):
        QueueOrder(["critical", "low"], {"critcal": 6, "low": 1})
