"""The poller: a failing watcher does not stop the others, and loaded state is kept out of the collector's walks."""

import gc

from serving.watchers import Poller


class Counting:
    def __init__(self, changes: list[bool]):
        self.changes = changes
        self.current = None

    def refresh(self) -> bool:
        changed = self.changes.pop(0)
        if changed:
            self.current = object()
        return changed


class Broken:
    current = None

    def refresh(self) -> bool:
        raise RuntimeError("publication unreadable")


def test_a_load_freezes_the_heap_and_stop_thaws_it():
    poller = Poller(poll_seconds=60)
    healthy = poller.add(Counting([True, False]))
    poller.add(Broken())
    try:
        assert poller.refresh_all() is True and healthy.current is not None  # the broken watcher is logged, skipped
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert poller.refresh_all() is False  # nothing new: nothing to freeze
    finally:
        poller.stop()
    assert gc.get_freeze_count() == 0
