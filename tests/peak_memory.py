"""Measuring what a block of code allocates, for the tests that a small file stays small."""

import tracemalloc


class PeakMemory:
    """`with PeakMemory() as peak:` ... then peak.bytes: the most Python allocated in the block."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
