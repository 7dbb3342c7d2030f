"""A small thread-safe least-recently-used memo: what a process keeps of the paintings it has read.

The engine's style vectors and both runtimes' colour moments are kept by the painting's content key
(:func:`~semstyle.pipeline.style_store.image_key`); a server's worker threads share one engine, so
every look-up and insertion holds the lock, and only the newest ``size`` entries stay in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

Value = TypeVar("Value")


class LruMemo(Generic[Value]):
    """Values by key, the ``size`` most recently used kept."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[str, Value] = OrderedDict()
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, key: str | None) -> Value | None:
        """The value under ``key`` (now the most recently used), or None."""
        if key is None:
            return None
        with self.lock:
            if key not in self.entries:
                return None
            self.entries.move_to_end(key)
            return self.entries[key]

    def remember(self, key: str | None, value: Value) -> None:
        """Keep ``value`` under ``key`` (``None``: not kept), dropping the least recently used."""
        if key is None:
            return
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
