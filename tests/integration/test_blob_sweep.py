"""The sweep of photo files no transaction names, at one real site (real store and files): it
removes only what is unnamed and older than the grace period, and never a file a committed or
prepared upload names, however old."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from domain.messages import AddPhotos, Decision, PhotoMeta, Prepare
from eventstore.blob_sweep import named_blobs, sweep_site
from tests.integration.test_batch_api import existing_event, post_batch
from web.keys import SERVICE
from web.peers.transport import Outgoing, encode_batch

GRACE_S = 3600.0
OLD = time.time() - 2 * GRACE_S


def blob(files, kind: str, label: str) -> str:
    data = f"{kind} {label} {uuid.uuid4()}".encode()
    sha = hashlib.sha256(data).hexdigest()
    files.write(kind, sha, data)
    os.utime(files.path(kind, sha), (OLD, OLD))
    return sha


async def send(client, message) -> dict:
    resp = await post_batch(client, encode_batch([Outgoing(message, None)]))
    return (await resp.json())["replies"][0]


async def upload(client, files, event_id: str, label: str, commit: bool | None) -> tuple[str, str]:
    """An upload of one photo at the site: prepared, then committed or aborted (or neither)."""
    photo, thumb = blob(files, "photo", label), blob(files, "thumb", label)
    meta = PhotoMeta(uuid.uuid4().hex, photo, thumb, "someone", 9)
    prepare = Prepare(f"9-{label}", event_id, 9, AddPhotos(0, (meta,)))
    assert (await send(client, prepare))["yes"]
    if commit is not None:
        await send(client, Decision(prepare.txn_id, event_id, commit, None, prepare.payload))
    for kind, sha in (("photo", photo), ("thumb", thumb)):
        os.utime(files.path(kind, sha), (OLD, OLD))  # the prepare claimed them: make them old
    return photo, thumb


async def test_the_sweep_removes_only_old_files_no_committed_or_prepared_upload_names(client):
    service = client.server.app[SERVICE]
    files = service.files
    committed = await upload(client, files, await existing_event(client), "committed", True)
    aborted = await upload(client, files, await existing_event(client), "aborted", False)
    prepared = await upload(client, files, await existing_event(client), "prepared", None)
    never_named = blob(files, "photo", "shipped for an upload that never began")
    young = blob(files, "photo", "shipped a moment ago")
    os.utime(files.path("photo", young))
    part = files.path("photo", "a" * 64).with_suffix(".part")
    part.write_bytes(b"a sender gave up")
    os.utime(part, (OLD, OLD))

    assert set(committed) | set(prepared) <= named_blobs(service.store)
    removed = sweep_site(service.store, files, GRACE_S, time.time())

    assert {p.name for p in removed} == {f"{aborted[0]}.jpg", f"{aborted[1]}.jpg",
                                          f"{never_named}.jpg", part.name}
    for kind, sha in [("photo", committed[0]), ("thumb", committed[1]), ("photo", prepared[0]),
                      ("thumb", prepared[1]), ("photo", young)]:
        assert files.has(kind, sha), (kind, sha)


async def test_a_file_claimed_after_the_sweeps_clock_was_taken_is_kept_though_unnamed(client):
    service = client.server.app[SERVICE]
    files = service.files
    sha = blob(files, "photo", "about to be named by a prepare")
    clock = time.time()
    time.sleep(0.01)
    assert files.claim("photo", sha)  # a prepare looked for it: it is about to be named
    assert sweep_site(service.store, files, GRACE_S, clock) == []
    assert files.has("photo", sha)


async def test_a_sweep_right_after_a_crash_removes_old_temp_files_but_no_photo(client):
    service = client.server.app[SERVICE]
    files = service.files
    committed = await upload(client, files, await existing_event(client), "kept", True)
    temp = files.path("photo", committed[0]).parent / ".tmp-crashed.part"
    temp.write_bytes(b"half a photo")
    os.utime(temp, (OLD, OLD))
    removed = sweep_site(service.store, files, GRACE_S, time.time())
    assert [p.name for p in removed] == [temp.name]
    assert files.has("photo", committed[0]) and files.has("thumb", committed[1])
