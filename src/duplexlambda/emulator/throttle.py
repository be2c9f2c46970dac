"""The streaming bandwidth limit AWS applies to streamed responses (``--throttle``).

Lambda streams the first 6 MB of a response uncapped, then at most 2 MB/s
(docs/runtime-api.md §8). RIE implements it as a token bucket: 6 MiB burst, 2 MiB/s, refilled every
125 ms. This one refills continuously, which averages to the same rate. Sans-I/O: the caller
passes the clock and sleeps for the delay it is given.
"""

from __future__ import annotations

BURST = 6 * 1024 * 1024
RATE = 2 * 1024 * 1024


class TokenBucket:
    """``reserve(n, now)`` takes ``n`` tokens and says how long to wait before sending ``n``."""

    def __init__(self, burst: int = BURST, rate: float = RATE, now: float = 0.0) -> None:
        if burst <= 0 or rate <= 0:
            raise ValueError("burst and rate must be positive")
        self._burst = burst
        self._rate = rate
        self._tokens = float(burst)
        self._last = now

    def reserve(self, n: int, now: float) -> float:
        """Spend ``n`` tokens at time ``now``; return the seconds to wait before sending."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._tokens -= n
        # A debt is paid back at the refill rate: wait until the bucket is level again.
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
