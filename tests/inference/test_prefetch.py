"""The reader thread: frames decoded ahead, in order, bounded, errors where they happen."""

import threading
import time

import pytest

from stemseg_fast.inference.prefetch import prefetched


class CountingSource:
    """Items 0, 1, ...; records how far it was read and whether it was closed."""

    def __init__(self, count, fail_at=None):
        self.count, self.fail_at, self.read, self.closed = count, fail_at, 0, False

    def __iter__(self):
        try:
            for index in range(self.count):
                if index == self.fail_at:
                    raise ValueError(f"frame {index} is broken")
                self.read += 1
                yield index
        finally:
            self.closed = True


def test_items_come_in_order_and_the_reader_stays_a_bounded_distance_ahead():
    source = CountingSource(200)
    seen = []
    for item in prefetched(source, depth=4):
        time.sleep(0.0005)
        assert source.read - item <= 4 + 2  # the queue, one in the reader's hand, one taken
        seen.append(item)
    assert seen == list(range(200)) and source.closed


def test_an_error_of_the_source_is_raised_at_its_item():
    seen = []
    with pytest.raises(ValueError, match="frame 7 is broken"):
        for item in prefetched(CountingSource(20, fail_at=7), depth=3):
            seen.append(item)
    assert seen == list(range(7))


def test_leaving_early_stops_the_reader_and_closes_the_source():
    before = threading.active_count()
    source = CountingSource(10_000)
    iterator = prefetched(source, depth=2)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    iterator.close()
    assert source.closed and source.read <= 3 + 2 + 1
    assert threading.active_count() == before


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        next(prefetched([1], depth=0))


def test_the_transform_runs_on_the_reader_thread():
    threads = []

    def doubled(item):
        threads.append(threading.current_thread().name)
        return 2 * item

    assert list(prefetched(range(5), depth=2, transform=doubled)) == [0, 2, 4, 6, 8]
    assert threads == ["stemseg-fast-reader"] * 5
