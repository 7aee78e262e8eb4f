import hashlib
import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.photo_files import PhotoFiles

PHOTO = b"\xff\xd8 pretend this is a photo \xff\xd9"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
HOSTILE = ["../x", "../" + "0" * 61, PHOTO_SHA.upper(), PHOTO_SHA[:63], PHOTO_SHA + "0",
           "/" + PHOTO_SHA[1:], PHOTO_SHA[:63] + "\n", "", None]


def test_a_written_photo_can_be_read_back_from_its_content_address(tmp_path):
    files = PhotoFiles(tmp_path / "site-0")
    assert not files.has("photo", PHOTO_SHA)

    path = files.write("photo", PHOTO_SHA, PHOTO)

    assert path == tmp_path / "site-0" / "photos" / f"{PHOTO_SHA}.jpg" == files.path("photo", PHOTO_SHA)
    assert files.has("photo", PHOTO_SHA)
    assert files.read("photo", PHOTO_SHA) == PHOTO
    assert not files.has("thumb", PHOTO_SHA)


def test_thumbnails_live_in_their_own_folder(tmp_path):
    files = PhotoFiles(tmp_path)

    path = files.write("thumb", PHOTO_SHA, PHOTO)

    assert path == tmp_path / "thumbs" / f"{PHOTO_SHA}.jpg"
    assert files.has("thumb", PHOTO_SHA) and not files.has("photo", PHOTO_SHA)


def test_a_second_write_of_the_same_file_leaves_the_first_untouched(tmp_path):
    files = PhotoFiles(tmp_path)
    first = files.write("photo", PHOTO_SHA, PHOTO)
    before = first.stat()

    second = files.write("photo", PHOTO_SHA, PHOTO)

    after = second.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_data_that_does_not_hash_to_the_given_sha_is_refused_and_not_stored(tmp_path):
    files = PhotoFiles(tmp_path)

    with pytest.raises(ValueError):
        files.write("photo", PHOTO_SHA, PHOTO + b"tampered")

    assert not files.has("photo", PHOTO_SHA)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_that_is_not_64_lowercase_hex_characters_is_refused_everywhere(tmp_path, name):
    files = PhotoFiles(tmp_path / "root")

    for attempt in (
        lambda: files.path("photo", name),
        lambda: files.has("photo", name),
        lambda: files.read("photo", name),
        lambda: files.write("photo", name, PHOTO),
    ):
        with pytest.raises(ValueError):
            attempt()
    assert not (tmp_path / "root").exists()


@given(name=st.text(max_size=80))
def test_no_other_text_is_accepted_as_a_sha(name):
    files = PhotoFiles("/nonexistent-root")
    if len(name) == 64 and set(name) <= set("0123456789abcdef"):
        assert files.path("photo", name).parent.name == "photos"
    else:
        with pytest.raises(ValueError):
            files.path("photo", name)


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError):
        PhotoFiles(tmp_path).write("../photos", PHOTO_SHA, PHOTO)


def test_reading_a_file_this_site_does_not_hold_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        PhotoFiles(tmp_path).read("photo", PHOTO_SHA)


def test_no_temporary_files_are_left_behind(tmp_path):
    files = PhotoFiles(tmp_path)
    blobs = [bytes([i]) * (1000 + i) for i in range(5)]
    for blob in blobs:
        files.write("photo", hashlib.sha256(blob).hexdigest(), blob)
        files.write("photo", hashlib.sha256(blob).hexdigest(), blob)
    with pytest.raises(ValueError):
        files.write("photo", PHOTO_SHA, b"not the photo")

    names = sorted(p.name for p in (tmp_path / "photos").iterdir())
    assert names == sorted(f"{hashlib.sha256(b).hexdigest()}.jpg" for b in blobs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_threads_writing_the_same_file_at_once_all_succeed_with_one_file(tmp_path):
    files = PhotoFiles(tmp_path / "fresh" / "site-1")
    errors = []

    def write() -> None:
        try:
            files.write("photo", PHOTO_SHA, PHOTO)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=write) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert [p.name for p in (tmp_path / "fresh" / "site-1" / "photos").iterdir()] == [f"{PHOTO_SHA}.jpg"]
    assert files.read("photo", PHOTO_SHA) == PHOTO


def test_keep_writes_a_missing_file_and_claims_one_that_is_there(tmp_path):
    files = PhotoFiles(tmp_path)
    assert files.keep("photo", PHOTO_SHA, PHOTO) is True
    path = files.path("photo", PHOTO_SHA)
    old = path.stat().st_mtime - 3600
    os.utime(path, (old, old))  # an hour old: the sweep's grace period would run out sooner

    assert files.keep("photo", PHOTO_SHA, PHOTO) is False  # not written again...
    assert path.stat().st_mtime > old + 3000  # ...but its age starts again
    assert files.read("photo", PHOTO_SHA) == PHOTO
    with pytest.raises(ValueError):
        files.keep("thumb", PHOTO_SHA, b"not the photo")
    assert not files.has("thumb", PHOTO_SHA)


THUMB = b"\xff\xd8 and its thumbnail \xff\xd9"
THUMB_SHA = hashlib.sha256(THUMB).hexdigest()


def test_keep_all_writes_an_uploads_files_together_and_claims_those_held(tmp_path, monkeypatch):
    files = PhotoFiles(tmp_path)
    files.write("photo", PHOTO_SHA, PHOTO)
    files.write("thumb", PHOTO_SHA, PHOTO)  # both folders made (each new one synced in its parent)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    assert files.keep_all([("photo", PHOTO_SHA, PHOTO), ("thumb", THUMB_SHA, THUMB)]) == [False, True]

    assert files.read("thumb", THUMB_SHA) == THUMB and files.read("photo", PHOTO_SHA) == PHOTO
    assert len(synced) == 2  # the new file's bytes, then its folder: durable before this returned
    assert not [p for folder in files.folders() for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_keep_all_writes_nothing_when_any_data_is_not_its_name(tmp_path):
    files = PhotoFiles(tmp_path)
    with pytest.raises(ValueError):
        files.keep_all([("thumb", THUMB_SHA, THUMB), ("photo", PHOTO_SHA, b"something else")])
    assert not files.has("thumb", THUMB_SHA) and not files.has("photo", PHOTO_SHA)


def test_keep_all_failing_midway_leaves_no_temporary_files_and_no_file_under_a_final_name(tmp_path, monkeypatch):
    files = PhotoFiles(tmp_path)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        files.keep_all([("photo", PHOTO_SHA, PHOTO), ("thumb", THUMB_SHA, THUMB)])
    monkeypatch.undo()
    assert not files.has("photo", PHOTO_SHA) and not files.has("thumb", THUMB_SHA)
    assert not [p for folder in files.folders() for p in folder.iterdir()]


def test_keep_sound_writes_the_blobs_that_are_their_names_and_says_which_were_not(tmp_path):
    files = PhotoFiles(tmp_path)
    sound = files.keep_sound([("photo", PHOTO_SHA, b"not the photo"), ("thumb", THUMB_SHA, THUMB)])
    assert sound == [False, True]
    assert not files.has("photo", PHOTO_SHA) and files.read("thumb", THUMB_SHA) == THUMB
