"""The pipeline's reader thread: chunks read ahead, in order, a bounded number at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from xpcs_kernel.errors import UsageError
from xpcs_kernel.pipeline.run import READ_AHEAD, ReadAhead


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the reader thread did not get there"
        time.sleep(0.001)


class Counted:
    """Items 0..n-1, counting how many were produced (read) so far."""

    def __init__(self, n: int, *, fail_at: int | None = None) -> None:
        self.produced = 0
        self._n = n
        self._fail_at = fail_at
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        for i in range(self._n):
            self.threads.add(threading.current_thread().name)
            if i == self._fail_at:
                raise ValueError(f"chunk {i} is corrupt")
            self.produced += 1
            yield i


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_reads_exactly_depth_items_ahead_and_keeps_their_order(depth: int) -> None:
    items = Counted(8)
    reader = ReadAhead(iter(items), depth=depth)
    try:
        _wait_for(lambda: items.produced == depth)  # read at once, before any is taken
        time.sleep(0.05)
        assert items.produced == depth  # and no further
        assert next(reader) == 0
        _wait_for(lambda: items.produced == depth + 1)
        time.sleep(0.05)
        assert items.produced == depth + 1
        assert list(reader) == [1, 2, 3, 4, 5, 6, 7]
        assert next(reader, "end") == "end"  # stays ended
    finally:
        reader.close()
    assert items.threads  # read in the reader thread, never the caller's
    assert all(n.startswith("xpcs-read") for n in items.threads)


def test_an_error_is_raised_where_its_item_would_have_come() -> None:
    items = Counted(6, fail_at=3)
    reader = ReadAhead(iter(items), depth=READ_AHEAD)
    try:
        assert [next(reader), next(reader), next(reader)] == [0, 1, 2]
        with pytest.raises(ValueError, match="chunk 3 is corrupt"):
            next(reader)
        assert next(reader, "end") == "end"  # nothing after the failure
    finally:
        reader.close()
    assert items.produced == 3


def test_close_stops_the_reader_before_the_end() -> None:
    items = Counted(100)
    reader = ReadAhead(iter(items), depth=2)
    assert next(reader) == 0
    reader.close()
    produced = items.produced
    time.sleep(0.05)
    assert items.produced == produced <= 3  # nothing read after close returned


def test_depth_must_be_positive() -> None:
    with pytest.raises(UsageError, match="depth"):
        ReadAhead(iter([1]), depth=0)
