"""How a site process logs: readable text, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import TextIO


class JsonFormatter(logging.Formatter):
    """{"time", "level", "site", "logger", "message"} and "exception" when there is one."""

    def __init__(self, site: int):
        super().__init__()
        self.site = site

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "site": self.site,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str, site: int) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(site)
    return logging.Formatter(f"%(asctime)s site-{site} %(levelname)s %(name)s: %(message)s")


def configure_logging(log_format: str, site: int, stream: TextIO) -> None:
    """The root logger of a site process (called once, by web.site.main)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format, site))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
