"""Blobs arriving from a peer: the bytes held so far of each, kept across cuts and restarts.

A blob travels as a content-addressed file (`eventstore.photo_files`): its bytes are appended to
`<sha256>.part` beside the file's final name (the same file system, so the rename is atomic
and never a copy) as they come, from any offset up to what is held (a sender that
was cut asks how much is held and goes on from there). When the sender says it sent the last
byte, the whole part is hashed: if it matches its name it is fsynced, renamed to its final name
and the folder fsynced, so a file under a final name is always complete, verified and durable;
if not, the part is thrown away and the sender starts again.

The part files need no fsync while they grow: after a crash a part may be shorter (the sender
resends the rest) or hold garbage (the final hash refuses it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from eventstore.photo_files import PhotoFiles, ensure_dir, fsync_dir

HASH_CHUNK = 1024 * 1024


class DigestMismatch(ValueError):
    """The bytes received hash to something else than the blob's name: they were dropped."""


@dataclass(frozen=True)
class Held:
    complete: bool
    size: int  # bytes held: the whole file when complete, the part so far otherwise


class BlobParts:
    def __init__(self, files: PhotoFiles):
        self.files = files

    def part_path(self, kind: str, sha256: str) -> Path:
        return self.files.path(kind, sha256).with_suffix(".part")  # validates kind and name

    def held(self, kind: str, sha256: str) -> Held:
        """What this site holds of the blob; a complete one is claimed (see PhotoFiles.claim)."""
        if self.files.claim(kind, sha256):
            return Held(True, self.files.path(kind, sha256).stat().st_size)
        try:
            return Held(False, self.part_path(kind, sha256).stat().st_size)
        except FileNotFoundError:
            return Held(False, 0)

    def open_at(self, kind: str, sha256: str, offset: int):
        """A binary file to append the bytes from `offset` on; ValueError if offset is past what
        is held (bytes before it are missing). Bytes held past `offset` are dropped."""
        path = self.part_path(kind, sha256)
        ensure_dir(path.parent)
        held = path.stat().st_size if path.exists() else 0
        if offset > held:
            raise ValueError(f"offset {offset} is past the {held} bytes held")
        part = open(path, "r+b" if path.exists() else "w+b")
        part.truncate(offset)
        part.seek(offset)
        return part

    def finish(self, kind: str, sha256: str) -> Path:
        """Verify the part, make it durable under its final name, and return that path.
        DigestMismatch (the part is removed) if it is not the blob its name says."""
        path = self.part_path(kind, sha256)
        final = self.files.path(kind, sha256)
        digest = hashlib.sha256()
        with open(path, "rb") as part:
            while chunk := part.read(HASH_CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                path.unlink(missing_ok=True)
                raise DigestMismatch(f"the bytes received hash to {digest.hexdigest()}, not {sha256}")
            os.fsync(part.fileno())
        os.replace(path, final)
        fsync_dir(final.parent)
        return final

    def drop(self, kind: str, sha256: str) -> None:
        self.part_path(kind, sha256).unlink(missing_ok=True)
