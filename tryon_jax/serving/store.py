"""The people's photo store: SQLite (standard library) for metadata, files on disk.

    store = PhotoStore(root, preprocessor=PersonPreprocessor())
    record = store.add(owner, photo_bytes, consent=True, name="me.jpg")
    store.list(owner); store.person(owner, photo_id); store.delete(owner, photo_id)

A photo is kept only with explicit consent (``consent=True``, with the text consented to and
when), belongs to one owner, and every call takes the owner: another owner's photo is "not
found", never readable, listable or deletable. ``add`` runs the person preprocessing once and
keeps its outputs next to the photo: ROOT/photos/<id>/{original, person.png, label.png,
pose.json, framing.json, results/}; a person for another garment region (full-body framing
for bottoms) is prepared on first use into ROOT/photos/<id>/<region>/ (or <region>.refused).
``delete`` removes the row, the photo, every derived file and every cached try-on result.

Crash safety: a photo's files are written into ROOT/tmp/<id>, fsynced, and the folder is
renamed into ROOT/photos in one step before its row is committed; a delete commits the row's
removal first, then renames the folder into ROOT/trash and removes it. So a row always has a
complete folder, and on open the store removes what a killed process left behind (tmp, trash
and folders without a row). Retention: photos older than ``retention_days`` are purged (on
open, on add and by ``purge_expired``), and an owner holds at most ``max_photos``.
"""
import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time

import numpy as np
from PIL import Image

from tryon_jax.core.files import atomic_write, png_bytes
from tryon_jax.person.photo import load_photo
from tryon_jax.person.pose import openpose_json

CONSENT_TEXT = ("I agree that this photo is stored to try clothes on, is visible only to me, and is deleted "
                "for good when I delete it.")
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    bytes INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    consent_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_owner ON photos (owner, created);
"""


class StoreError(ValueError):
    """A request the store refuses (no consent, limit reached)."""


class ConsentError(StoreError):
    pass


class LimitError(StoreError):
    pass


class Refused(StoreError):
    """The stored photo cannot be prepared for a garment region (e.g. its legs are cut off)."""


class NotFound(KeyError):
    """No such photo for this owner (also when it belongs to someone else)."""


@dataclasses.dataclass(frozen=True)
class PhotoRecord:
    id: str
    owner: str
    name: str
    created: float
    bytes: int
    width: int
    height: int
    consent_text: str

    def public(self) -> dict:
        """What the owner's client sees (no owner id)."""
        return {"id": self.id, "name": self.name, "created": self.created, "bytes": self.bytes,
                "width": self.width, "height": self.height}


@dataclasses.dataclass
class StoredPerson:
    """The preprocessing's outputs as try-on reads them."""
    image: np.ndarray  # (256, 192, 3) uint8
    label: np.ndarray  # (256, 192) uint8
    keypoints: np.ndarray  # (18, 3) OpenPose (x, y, conf) in the 192x256 frame
    framing: np.ndarray | None = None  # 2x3 photo -> frame map (None: stored before it was kept)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _person_files(person) -> dict:
    """A prepared Person's files: the framed picture, labels, pose and framing map."""
    return {"person.png": png_bytes(person.image), "label.png": png_bytes(person.label),
            "pose.json": json.dumps(openpose_json(person.keypoints)).encode(),
            "framing.json": json.dumps({"photo_size": list(person.photo_size),
                                        "matrix": np.asarray(person.framing).tolist()}).encode()}


def _write_files(folder: str, files: dict) -> None:
    """Each file written and fsynced, then the folder."""
    for file, content in files.items():
        with open(os.path.join(folder, file), "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    _fsync_dir(folder)


def _clean_name(name: str) -> str:
    name = os.path.basename(str(name or "photo")).strip()
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or "photo"


class PhotoStore:
    def __init__(self, root: str, preprocessor=None, retention_days: float = 30.0, max_photos: int = 20,
                 clock=time.time, region_preprocessors: dict | None = None):
        self.root = os.path.abspath(root)
        self.preprocessor = preprocessor
        self.region_preprocessors = region_preprocessors or {}  # e.g. {"lower": full-body}, run on first use
        self.retention_days = retention_days
        self.max_photos = max_photos
        self.clock = clock
        for sub in ("photos", "tmp", "trash"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(os.path.join(self.root, "store.sqlite3"), check_same_thread=False,
                                   isolation_level=None)
        # a rollback journal removed at each commit (not WAL, whose log keeps old pages) and
        # secure_delete (deleted rows are overwritten): a deleted photo leaves nothing in the files
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.recover()
        self.purge_expired()

    # --- paths -------------------------------------------------------------------------------

    def _dir(self, photo_id: str) -> str:
        if not _ID.match(photo_id):
            raise NotFound(photo_id)
        return os.path.join(self.root, "photos", photo_id)

    def result_path(self, owner: str, photo_id: str, garment_id: str, model_id: str) -> str:
        self.get(owner, photo_id)
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{garment_id}__{model_id}")
        return os.path.join(self._dir(photo_id), "results", key + ".png")

    # --- recovery and retention ----------------------------------------------------------------

    def recover(self) -> dict:
        """Removes what a killed process left: unfinished adds (tmp), unfinished deletes
        (trash) and photo folders without a row. Returns the counts."""
        with self._lock:
            counts = {}
            for sub in ("tmp", "trash"):
                names = os.listdir(os.path.join(self.root, sub))
                for name in names:
                    shutil.rmtree(os.path.join(self.root, sub, name), ignore_errors=True)
                counts[sub] = len(names)
            rows = {r[0] for r in self._db.execute("SELECT id FROM photos")}
            orphans = [n for n in os.listdir(os.path.join(self.root, "photos")) if n not in rows]
            for name in orphans:
                shutil.rmtree(os.path.join(self.root, "photos", name), ignore_errors=True)
            counts["orphans"] = len(orphans)
            missing = [r for r in rows if not os.path.isfile(os.path.join(self.root, "photos", r, "person.png"))]
            for photo_id in missing:  # cannot happen through this class; a folder removed by hand
                self._db.execute("DELETE FROM photos WHERE id = ?", (photo_id,))
            counts["missing"] = len(missing)
            return counts

    def purge_expired(self) -> int:
        """Deletes every photo older than the retention period; returns how many."""
        if not self.retention_days:
            return 0
        cutoff = self.clock() - self.retention_days * 86400
        with self._lock:
            old = self._db.execute("SELECT owner, id FROM photos WHERE created < ?", (cutoff,)).fetchall()
        for owner, photo_id in old:
            self.delete(owner, photo_id)
        return len(old)

    # --- the API -------------------------------------------------------------------------------

    def add(self, owner: str, data: bytes, consent: bool, name: str = "photo",
            consent_text: str = CONSENT_TEXT) -> PhotoRecord:
        """Stores a photo of one person with its preprocessing outputs. Raises ConsentError
        without ``consent is True``, LimitError at ``max_photos``, and the preprocessing's
        PhotoError / PersonError for photos it refuses (nothing is stored then)."""
        if consent is not True:
            raise ConsentError("consent is required to store a photo: " + consent_text)
        if not owner:
            raise StoreError("no owner")
        name = _clean_name(name)
        self.purge_expired()
        with self._lock:
            if self._count(owner) >= self.max_photos:
                raise LimitError(f"you already have {self.max_photos} photos (the limit); delete one first")
        person = self.preprocessor.prepare(bytes(data), name)
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        photo_id = secrets.token_urlsafe(18)
        tmp = os.path.join(self.root, "tmp", photo_id)
        os.makedirs(os.path.join(tmp, "results"))
        _write_files(tmp, {"original": bytes(data), **_person_files(person)})
        record = PhotoRecord(photo_id, owner, name, self.clock(), len(data), width, height, consent_text)
        with self._lock:
            if self._count(owner) >= self.max_photos:  # another add won the race
                shutil.rmtree(tmp, ignore_errors=True)
                raise LimitError(f"you already have {self.max_photos} photos (the limit); delete one first")
            os.rename(tmp, self._dir(photo_id))
            _fsync_dir(os.path.join(self.root, "photos"))
            self._db.execute("INSERT INTO photos VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dataclasses.astuple(record))
        return record

    def list(self, owner: str) -> list[PhotoRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM photos WHERE owner = ? ORDER BY created, id", (owner,)).fetchall()
        return [PhotoRecord(*r) for r in rows]

    def get(self, owner: str, photo_id: str) -> PhotoRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM photos WHERE id = ? AND owner = ?",
                                   (str(photo_id), owner)).fetchone()
        if row is None:
            raise NotFound(photo_id)
        return PhotoRecord(*row)

    def file(self, owner: str, photo_id: str, name: str) -> str:
        """Path of one of the photo's files (original, person.png, label.png, pose.json, framing.json)."""
        self.get(owner, photo_id)
        if name not in ("original", "person.png", "label.png", "pose.json", "framing.json"):
            raise NotFound(name)
        return os.path.join(self._dir(photo_id), name)

    def person(self, owner: str, photo_id: str, region: str = "upper") -> StoredPerson:
        """The stored person as prepared for ``region``: 'upper' at upload; other regions
        (full-body framing for bottoms) on first use, kept in the photo's folder, or Refused
        with the reason (also kept)."""
        self.get(owner, photo_id)
        folder = self._dir(photo_id)
        if region != "upper":
            folder = self._region_person(photo_id, region)
        with Image.open(os.path.join(folder, "person.png")) as im:
            image = np.asarray(im.convert("RGB"))
        with Image.open(os.path.join(folder, "label.png")) as im:
            label = np.asarray(im)
        with open(os.path.join(folder, "pose.json")) as f:
            keypoints = np.asarray(json.load(f)["people"][0]["pose_keypoints"], np.float64).reshape(18, 3)
        try:
            with open(os.path.join(folder, "framing.json")) as f:
                framing = np.asarray(json.load(f)["matrix"], np.float64).reshape(2, 3)
        except FileNotFoundError:
            framing = None
        return StoredPerson(image, label, keypoints, framing)

    def _region_person(self, photo_id: str, region: str) -> str:
        """The folder of the person prepared for ``region``, prepared now when missing."""
        folder = os.path.join(self._dir(photo_id), region)
        refusal = folder + ".refused"
        if os.path.isfile(os.path.join(folder, "pose.json")):
            return folder
        if os.path.isfile(refusal):
            with open(refusal, encoding="utf-8") as f:
                raise Refused(f.read())
        if region not in self.region_preprocessors:
            raise Refused(f"photos are not prepared for the {region} garment region here")
        with open(os.path.join(self._dir(photo_id), "original"), "rb") as f:
            data = f.read()
        try:
            person = self.region_preprocessors[region].prepare(data, "the photo")
        except ValueError as e:  # PhotoError / PersonError: what the photo shows does not do
            with self._lock:
                if not os.path.isdir(self._dir(photo_id)):
                    raise NotFound(photo_id) from None
                with atomic_write(refusal, "w") as f:
                    f.write(str(e))
            raise Refused(str(e)) from None
        tmp = os.path.join(self.root, "tmp", f"{photo_id}-{region}-{secrets.token_hex(4)}")
        os.makedirs(tmp)
        _write_files(tmp, _person_files(person))
        with self._lock:
            if not os.path.isdir(self._dir(photo_id)):  # deleted meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
                raise NotFound(photo_id)
            if not os.path.isdir(folder):  # a concurrent call may have won
                os.rename(tmp, folder)
                _fsync_dir(self._dir(photo_id))
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def photo(self, owner: str, photo_id: str) -> np.ndarray:
        """The photo as it was uploaded, decoded upright (as the preprocessing saw it)."""
        return load_photo(self.file(owner, photo_id, "original"), "the stored photo")

    def delete(self, owner: str, photo_id: str) -> None:
        """Removes the photo, its derived files and cached results for good."""
        with self._lock:
            self.get(owner, photo_id)
            self._db.execute("DELETE FROM photos WHERE id = ? AND owner = ?", (photo_id, owner))
            trash = os.path.join(self.root, "trash", photo_id)
            os.rename(self._dir(photo_id), trash)
        shutil.rmtree(trash)

    def cached_result(self, owner: str, photo_id: str, garment_id: str, model_id: str) -> bytes | None:
        path = self.result_path(owner, photo_id, garment_id, model_id)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def cache_result(self, owner: str, photo_id: str, garment_id: str, model_id: str, png: bytes) -> None:
        """Keeps a try-on result with its photo (gone with it); a photo deleted meanwhile is a NotFound."""
        with self._lock:
            path = self.result_path(owner, photo_id, garment_id, model_id)
            with atomic_write(path) as f:
                f.write(png)

    def stats(self) -> dict:
        with self._lock:
            photos, owners = self._db.execute("SELECT COUNT(*), COUNT(DISTINCT owner) FROM photos").fetchone()
        return {"photos": photos, "owners": owners}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _count(self, owner: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM photos WHERE owner = ?", (owner,)).fetchone()[0]
