"""When this site started and stopped, kept in a small file of its own (data_dir/site-K/
lifecycle.jsonl, one JSON line each), so the audit can show a site's crash and restart: a start
with no clean stop before it followed a crash (or a kill). Nothing depends on it: a line that
cannot be written is logged and the site runs on.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)
FILE = "lifecycle.jsonl"
KEEP = 200  # the most recent starts and stops that are read back


def record(site_dir: Path, what: str) -> None:
    """Append "started" or "stopped", with the time."""
    line = json.dumps({"at": datetime.now(timezone.utc).isoformat(), "what": what})
    try:
        with open(Path(site_dir) / FILE, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as e:
        log.warning("could not note that the site %s in %s: %s", what, site_dir, e)


def starts(site_dir: Path, since: datetime | None = None) -> list[dict]:
    """[{"at", "after_crash"}] of every start at or after `since`, oldest first."""
    try:
        lines = (Path(site_dir) / FILE).read_text(encoding="utf-8").splitlines()[-KEEP:]
    except OSError:
        return []
    found, clean = [], True
    for line in lines:
        try:
            item = json.loads(line)
            at, what = datetime.fromisoformat(item["at"]), item["what"]
        except (ValueError, KeyError, TypeError):
            continue
        if what == "started":
            if since is None or at >= since:
                found.append({"at": at.isoformat(), "after_crash": not clean})
            clean = False
        elif what == "stopped":
            clean = True
    return found
