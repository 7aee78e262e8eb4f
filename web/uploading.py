"""Uploads: the use case of adding photos to an event at one site (votes are in web.voting).

The files are checked and re-encoded here, stored here, shipped to every site (ship, then
commit), and only then committed everywhere by a two-phase commit that names them.
"""

from __future__ import annotations

import uuid

from domain.admission import CONFLICT, MISSING_PHOTOS
from domain.errors import Busy, EventPublished, SiteUnreachable, VotingInProgress
from domain.messages import AddPhotos, PhotoMeta
from eventstore.imaging import NormalizedPhoto, normalize_upload
from web.errors import error_for_reason
from web.peers.blob_shipping import PeerMissedBlobs, blobs_of
from web.service import SiteService, back_off

# An upload ships its files again at most this often when a site votes no for lack of them
# (they were sent before the 2PC: a site that still lacks them lost them).
RESHIPMENTS = 3


class Uploads:
    def __init__(self, service: SiteService):
        self.service = service  # its reads of events, its files, its transactions, its shipper
        self.settings = service.settings

    async def upload(self, event_id: str, user_id: str, raw_files: list[bytes], name: str = ""):
        """Check and re-encode uploaded files, then add them (4xx for files that are not photos)."""
        max_pixels = self.settings.max_photo_pixels
        photos = [
            await self.service.loop.run_in_executor(None, lambda d=d: normalize_upload(d, max_pixels=max_pixels))
            for d in raw_files
        ]
        return await self.add_photos(event_id, user_id, photos, name)

    async def ship(self, photos) -> None:
        """Every photo file to every site before the 2PC (ship, then commit); 503 if a site
        cannot be sent them (nothing was prepared anywhere)."""
        try:
            await self.service.shipper.ship(blobs_of(photos), self.settings.sites)
        except PeerMissedBlobs as e:
            raise SiteUnreachable(f"The photos could not be sent to every site ({e}); "
                                  "nothing was changed.") from e

    async def add_photos(self, event_id: str, user_id: str, photos: list[NormalizedPhoto],
                         name: str = ""):
        """Store the photos here, ship them to every site, then commit them everywhere; retries
        while others conflict, and ships again if a site says it lacks some of them."""
        state = await self.service.event_state(event_id)
        if state.published:  # known refusals before any byte is shipped
            raise EventPublished()
        if state.round is not None:
            raise VotingInProgress()
        for photo in photos:
            await self.service.store_file("photo", photo.sha256, photo.jpeg)
            await self.service.store_file("thumb", photo.thumb_sha256, photo.thumb)
        await self.ship(photos)
        metas = tuple(
            PhotoMeta(uuid.uuid4().hex, p.sha256, p.thumb_sha256, user_id, self.service.site, name[:60])
            for p in photos
        )
        reshipped = 0
        for attempt in range(self.settings.protocol.upload_attempts):
            state = await self.service.event_state(event_id)
            if state.published:
                raise EventPublished()
            if state.round is not None:
                raise VotingInProgress()
            finished = await self.service.run_transaction(event_id, AddPhotos(state.version, metas))
            if finished.commit:
                return metas, state.version
            if finished.reason == MISSING_PHOTOS and reshipped < RESHIPMENTS:
                # A site lost them, or a sweep took them after a long wait: send them again.
                reshipped += 1
                await self.ship(photos)
                continue
            if finished.reason == MISSING_PHOTOS:
                raise SiteUnreachable("A site still lacks the photos after they were sent again; "
                                      "nothing was changed.")
            if finished.reason != CONFLICT:
                raise error_for_reason(finished.reason)
            # Another upload got there first: not the user's problem; back off and rebase.
            await back_off(attempt)
        raise Busy()
