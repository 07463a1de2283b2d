from collections import Counter

import pytest

from corral import ConfigError
from corral.worker import QueueOrder


def test_strict_order_is_fixed() -> None:
    order = QueueOrder(["critical", "high", "low"], None)
    assert {tuple(order.next()) for _ in range(10)} == {("critical", "high", "low")}


def test_weighted_order_gives_first_pick_by_weight() -> None:
    order = QueueOrder(["high", "low"], {"high": 3, "low": 1})
    firsts = Counter(order.next()[0] for _ in range(400))
    assert firsts == {"high": 300, "low": 100}


def test_weights_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        QueueOrder(["a"], {"a": 0})


def test_weights_for_queues_not_served_are_refused() -> None:
    with pytest.raises(ConfigError, match="critcal"):
        QueueOrder(["critical", "low"], {"critcal": 6, "low": 1})
