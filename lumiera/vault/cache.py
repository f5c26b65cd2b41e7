"""A frame cache bounded in bytes (``vault.cache_mb``), least recently used evicted first.

Keys say which frame in which form: (path, index, pixel format, size). Values
are numpy arrays (or tuples of planes); the cache counts their bytes, not
their number. Hits, misses and evictions are counted for ``stats``.
Thread-safe: the engine's workers share one cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

Pixels = np.ndarray[Any, Any] | tuple[np.ndarray[Any, Any], ...]


def nbytes(value: Pixels) -> int:
    return sum(p.nbytes for p in value) if isinstance(value, tuple) else int(value.nbytes)


class FrameCache:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, Pixels] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable) -> Pixels | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Pixels) -> None:
        """Keep ``value`` (not copied: do not change it afterwards); too large ones are not kept."""
        size = nbytes(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= nbytes(old)
            if size > self.max_bytes:
                return
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= nbytes(evicted)
                self.evictions += 1

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (not an eviction): a render's frame that nobody will ask for again."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= nbytes(old)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    @property
    def bytes(self) -> int:
        return self._bytes

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "frames": len(self._items),
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }
