"""What makes an event's title: the one check every way of creating an event goes through."""

from __future__ import annotations

from domain.errors import InvalidTitle

MAX_TITLE = 200
# What str.strip() takes away (Python's whitespace, control separators such as U+001D among
# it): a title needs one character outside it. Spelled out so that the OpenAPI document's
# pattern says exactly this, whatever a regex engine takes \s to mean.
BLANKS = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
NOT_BLANK = "[^" + "".join(f"\\u{ord(c):04x}" for c in BLANKS) + "]"


def clean_title(raw) -> str:
    """The title as stored (outer spaces stripped); InvalidTitle unless it is text of 1 to 200
    characters, not all spaces, that UTF-8 can carry (a lone surrogate cannot be stored)."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_TITLE:
        raise InvalidTitle()
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTitle("A title must be plain text (it held an unpaired surrogate).") from None
    return raw.strip()
