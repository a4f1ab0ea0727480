"""Reconnect delays: exponential, capped, with jitter so 4,470 cameras behind one dead switch do
not all reconnect in the same instant."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    def __init__(
        self, initial_s: float = 1.0, max_s: float = 30.0, *, rand: Callable[[], float] = random.random
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("backoff needs 0 < initial ≤ max")
        self.initial_s = initial_s
        self.max_s = max_s
        self.rand = rand
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: base·2ⁿ capped, drawn from [½, 1] of it."""
        base = min(self.max_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        return base * (0.5 + 0.5 * self.rand())
