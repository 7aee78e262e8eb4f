"""Named crash points: a test names one (SITE_CRASH_AT) and the site SIGKILLs itself there."""

from __future__ import annotations

import os
import signal

# The record each store step writes, as crash points name it.
STEP_NAMES = {
    "Prepared": "prepare",
    "Refused": "refusal",
    "Committed": "decision",
    "Aborted": "decision",
    "VoteCast": "vote",
    "Withdrawn": "withdrawal",
    "Began": "begin",
    "Decided": "decision",
    "Acknowledged": "ack",
    "Reported": "report",
}


class CrashPoints:
    def __init__(self, armed: str | None):
        self.armed = armed

    def hit(self, role: str, moment: str, step: str) -> None:
        """moment is 'before_stored', 'after_stored' or 'after_sent'."""
        if not self.armed:
            return
        when, _, what = moment.partition("_")
        names = {f"{role}.{when}_{step}_{what}"}
        if moment == "after_stored":
            names.add(f"{role}.after_{step}_stored_before_send")
        if self.armed in names:
            os.kill(os.getpid(), signal.SIGKILL)


def all_crash_points() -> list[str]:
    points = []
    for role, records in (
        ("participant", ("Prepared", "Refused", "Committed", "VoteCast", "Withdrawn")),
        ("coordinator", ("Began", "Decided", "Acknowledged", "Reported")),
    ):
        for step in dict.fromkeys(STEP_NAMES[r] for r in records):
            points += [
                f"{role}.before_{step}_stored",
                f"{role}.after_{step}_stored_before_send",
                f"{role}.after_{step}_sent",
            ]
    return points
