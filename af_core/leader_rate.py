"""How fast one leader may write: a sliding window per verified e-mail (issue 14: flood limits).

A person types a few messages a minute, clicks a button or two more; a script with a valid
login can send hundreds and make every action run (and, before the one-open-hand-over rule,
every time-out a case). ``LeaderRate.allow(email)`` says whether one more message may pass now.

The window lives in the memory of each Rasa replica: with N replicas a leader is held to N
times the limit at most, and the proxy's per-address limit (deploy/haproxy.cfg) stands in front.
``settings.leader_messages_per_minute`` (AF_LEADER_MESSAGES_PER_MINUTE): 30 in production,
0 (off) in development so evaluations and tests can drive the bot at full speed.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Deque, Optional

WINDOW_SECONDS = 60.0
MAX_TRACKED = 50_000  # leaders kept in memory; the least recently seen are forgotten first


class LeaderRate:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: "OrderedDict[str, Deque[float]]" = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, email: Optional[str]) -> bool:
        """True when this leader may send one more message now (and counts it)."""
        if self.per_minute <= 0 or not email:
            return True
        key = email.strip().lower()
        now = self.clock()
        with self._lock:
            times = self._seen.pop(key, None) or deque()
            while times and now - times[0] >= WINDOW_SECONDS:
                times.popleft()
            allowed = len(times) < self.per_minute
            if allowed:
                times.append(now)
            self._seen[key] = times
            while len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)
            return allowed
