"""What Corral keeps and tells about jobs beyond the queue itself: the events reader (a
resumable consumer of the queues' events streams). Nothing here is imported by ``corral``
itself; SQL storage, when it comes, imports SQLAlchemy only inside this package."""

from corral.history.events import EventReader

__all__ = ["EventReader"]
