"""Workers: the fetch loop, handler runners, leases, shutdown and the process supervisor."""

from corral.worker.core import Worker
from corral.worker.order import QueueOrder
from corral.worker.stats import WorkerStats

__all__ = ["QueueOrder", "Worker", "WorkerStats"]
