"""Uploads: the use case of adding photos to an event at one site (votes are in web.voting).

The files are checked and re-encoded here, stored here, shipped to every site (ship, then
commit), and only then committed everywhere by a two-phase commit that names them.

Uploads to one event at one site are committed together: while a transaction of the event runs
here, the uploads that finish shipping wait in the event's queue, and the next transaction
carries all of them (one AddPhotos with several submitters' photos, as a multi-photo upload
already was). A hot event (many guests at once) then costs a few 2PCs rather than one per photo,
each of which locks the event at every site and, run at once, only conflict with each other.
Each upload still gets its own answer: 201 once the transaction carrying it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

from domain.admission import CONFLICT, MISSING_PHOTOS
from domain.errors import (
    Busy,
    ContributorLimit,
    EventPublished,
    PhotoSessionError,
    SiteUnreachable,
    VotingInProgress,
)
from domain.messages import AddPhotos, PhotoMeta
from eventstore.imaging import NormalizedPhoto, normalize_upload
from web.errors import error_for_reason
from web.peers.blob_shipping import PeerMissedBlobs, blobs_of
from web.service import SiteService, back_off

# An upload ships its files again at most this often when a site votes no for lack of them
# (they were sent before the 2PC: a site that still lacks them lost them).
RESHIPMENTS = 3
# Photos one transaction carries at most (its prepare names each: ~0.2 kB apiece).
MAX_PHOTOS_PER_TXN = 64


@dataclass(eq=False)
class _Waiting:
    """An upload whose files every site holds, waiting for a transaction to carry it."""

    photos: list[NormalizedPhoto]
    metas: tuple[PhotoMeta, ...]
    answer: asyncio.Future  # -> (metas, the version before its first photo)
    attempts: int = 0  # transactions that carried it and conflicted
    reshipped: int = 0
    alone: bool = False  # carried by a transaction of its own (to learn its own refusal)
    submitters: frozenset[str] = field(init=False)

    def __post_init__(self):
        self.submitters = frozenset(m.submitter for m in self.metas)


class Uploads:
    def __init__(self, service: SiteService):
        self.service = service  # its reads of events, its files, its transactions, its shipper
        self.settings = service.settings
        self._queues: dict[str, list[_Waiting]] = {}  # event -> uploads waiting, oldest first
        self._arriving: dict[str, int] = {}  # event -> uploads being checked, stored or shipped

    async def upload(self, event_id: str, user_id: str, raw_files: list[bytes], name: str = ""):
        """Check and re-encode uploaded files, then add them (4xx for files that are not photos)."""
        max_pixels = self.settings.max_photo_pixels
        with self._arriving_at(event_id):
            photos = [
                await self.service.loop.run_in_executor(None, lambda d=d: normalize_upload(d, max_pixels=max_pixels))
                for d in raw_files
            ]
        return await self.add_photos(event_id, user_id, photos, name)

    def arriving(self, event_id: str) -> bool:
        """Whether uploads of the event are being checked, stored or shipped here: each is
        about to be committed (web.montages waits for them before building a montage ahead)."""
        return event_id in self._arriving

    @contextlib.contextmanager
    def _arriving_at(self, event_id: str):
        self._arriving[event_id] = self._arriving.get(event_id, 0) + 1
        try:
            yield
        finally:
            self._arriving[event_id] -= 1
            if not self._arriving[event_id]:
                del self._arriving[event_id]

    async def ship(self, photos: list[NormalizedPhoto]) -> None:
        """Every photo file to every site before the 2PC (ship, then commit), sent from memory;
        503 if a site cannot be sent them (nothing was prepared anywhere)."""
        contents = {(kind, sha): data for p in photos for kind, sha, data, _ in p.files()}
        try:
            await self.service.shipper.ship(blobs_of(photos), self.settings.sites, contents)
        except PeerMissedBlobs as e:
            raise SiteUnreachable(f"The photos could not be sent to every site ({e}); "
                                  "nothing was changed.") from e

    async def add_photos(self, event_id: str, user_id: str, photos: list[NormalizedPhoto],
                         name: str = ""):
        """Store the photos here, ship them to every site, then commit them everywhere (with
        whatever else is waiting for the event here); returns (metas, the version before them)."""
        with self._arriving_at(event_id):  # entered before the first await: upload's goes on
            self._check_open(await self.service.event_state(event_id))  # before any byte is shipped
            files = [file for p in photos for file in p.files()]
            await self.service.store_files([(kind, sha, data) for kind, sha, data, _ in files])
            self.service.montages.sized(files)  # the montage drawn here next needs their sizes
            await self.ship(photos)
        metas = tuple(
            PhotoMeta(uuid.uuid4().hex, p.sha256, p.thumb_sha256, user_id, self.service.site, name[:60])
            for p in photos
        )
        waiting = _Waiting(photos, metas, self.service.loop.create_future())
        queue = self._queues.setdefault(event_id, [])
        queue.append(waiting)
        if len(queue) == 1:  # nobody commits this event here yet
            asyncio.create_task(self._commit_queued(event_id, queue))
        return await waiting.answer

    @staticmethod
    def _check_open(state) -> None:
        if state.published:
            raise EventPublished()
        if state.round is not None:
            raise VotingInProgress()

    async def _commit_queued(self, event_id: str, queue: list[_Waiting]) -> None:
        """Commit the event's queue until it is empty, a transaction at a time; each upload is
        answered as the transaction carrying it ends. Retries while others conflict, and ships
        again if a site says it lacks some of the files."""
        try:
            while queue:
                state = await self.service.event_state(event_id)
                self._check_open(state)
                group = self._next_group(state, queue)
                metas = tuple(m for w in group for m in w.metas)
                try:
                    finished = await self.service.run_transaction(event_id, AddPhotos(state.version, metas),
                                                                  first=state.home_site)
                except PhotoSessionError as e:  # this transaction's trouble (503, 504): its uploads'
                    for w in group:
                        self._answer(queue, w, error=e)
                    continue
                if finished.commit:
                    base = state.version
                    for w in group:
                        self._answer(queue, w, result=(w.metas, base))
                        base += len(w.metas)
                elif finished.reason == MISSING_PHOTOS:
                    await self._reship(queue, group)
                elif finished.reason == CONFLICT:
                    # Another site's upload got there first: not the user's problem; back off
                    # and rebase (what arrives meanwhile joins the next transaction).
                    for w in group:
                        w.attempts += 1
                        if w.attempts >= self.settings.protocol.upload_attempts:
                            self._answer(queue, w, error=Busy())
                    await back_off(min(w.attempts for w in group))
                elif finished.reason == ContributorLimit.code and len(group) > 1:
                    for w in group:  # whose upload is over the limit is learnt one by one
                        w.alone = True
                else:
                    for w in group:
                        self._answer(queue, w, error=error_for_reason(finished.reason))
        except PhotoSessionError as e:  # the event closed (or is gone) for every upload waiting
            for w in list(queue):
                self._answer(queue, w, error=e)
        finally:
            for w in queue:  # only when cancelled (the site stops): nobody is left waiting
                w.answer.cancel()
            queue.clear()
            self._queues.pop(event_id, None)

    def _next_group(self, state, queue: list[_Waiting]) -> list[_Waiting]:
        """The oldest waiting uploads that fit one transaction: within the contributor limit as
        this site knows it (one that does not fit goes alone, so its own refusal answers it)."""
        if queue[0].alone:
            return [queue[0]]
        group, photos, submitters = [], 0, set(state.submitters)
        for w in queue:
            if w.alone or photos + len(w.metas) > MAX_PHOTOS_PER_TXN:
                break
            if len(submitters | w.submitters) > self.settings.max_contributors:
                continue
            group.append(w)
            photos += len(w.metas)
            submitters |= w.submitters
        return group or [queue[0]]

    async def _reship(self, queue: list[_Waiting], group: list[_Waiting]) -> None:
        """A site lost files of the group, or a sweep took them after a long wait: send them again."""
        for w in group:
            if w.reshipped >= RESHIPMENTS:
                self._answer(queue, w, error=SiteUnreachable(
                    "A site still lacks the photos after they were sent again; nothing was changed."))
        again = [w for w in group if w in queue]
        for w in again:
            w.reshipped += 1
        try:
            await self.ship([p for w in again for p in w.photos])
        except SiteUnreachable as e:
            for w in again:
                self._answer(queue, w, error=e)

    @staticmethod
    def _answer(queue: list[_Waiting], waiting: _Waiting, result=None, error=None) -> None:
        queue.remove(waiting)
        if waiting.answer.done():  # its client went away (the request was cancelled)
            return
        if error is not None:
            waiting.answer.set_exception(error)
        else:
            waiting.answer.set_result(result)
