"""Virtual time for the simulated bench: instruments advance it, nothing ever sleeps."""
from __future__ import annotations


class VirtualClock:
    """Seconds since the bench was built; moves only when an instrument or caller advances it.

    Why virtual: pulse widths, Pulse-Delta cycles, NPLC integrations and lock-in settling are
    milliseconds to seconds on hardware; a simulated run must take microseconds per point.
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def advance(self, dt: float) -> float:
        """Move time forward by ``dt`` seconds (negative is refused) and return the new time."""
        if dt < 0 or dt != dt:
            raise ValueError(f"clock.advance: dt must be >= 0, got {dt!r}")
        self.now += dt
        return self.now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now!r})"
