"""What the pure protocol steps need to know about their surroundings: who they are, the
topology, the event rules and the timings. Time is abstract: delays in seconds that the actor
turns into scheduled messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    prepare_timeout_s: float = 3.0
    resend_base_s: float = 0.2
    resend_max_s: float = 5.0
    in_doubt_s: float = 5.0
    ack_wait_s: float = 2.0
    # A round whose collection keeps failing for a site's sake ends ("unreachable") only once
    # this long has passed since its deadline.
    collect_grace_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1, 2, ...): doubling, bounded."""
        # The exponent is capped: a decision resent for hours must not overflow a float.
        return min(self.resend_base_s * 2 ** min(attempt - 1, 64), self.resend_max_s)


@dataclass(frozen=True)
class SiteConfig:
    site: int
    sites: tuple[int, ...]
    max_contributors: int = 10
    timing: Timing = Timing()

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(s for s in self.sites if s != self.site)
