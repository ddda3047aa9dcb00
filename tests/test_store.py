"""The photo store: consent, owners, deletion for good, retention, crash safety (killed processes)."""
import io
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from tryon_jax.person.preprocessor import Person, PersonError
from tryon_jax.serving.store import ConsentError, LimitError, NotFound, PhotoStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakePreprocessor:
    """Stands in for PersonPreprocessor: a person made from the photo's pixels; refuses a
    photo whose top-left pixel is black."""

    def prepare(self, data, name):
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((192, 256)))
        if not image[0, 0].any():
            raise PersonError(f"{name}: no person found")
        keypoints = np.tile(np.float32([[96, 100, 0.9]]), (18, 1))
        return Person(image, (image[..., 0] // 32).astype(np.uint8), keypoints, np.eye(2, 3))


def photo_bytes(seed: int, black: bool = False) -> bytes:
    rgb = np.random.default_rng(seed).integers(1, 255, (64, 48, 3), dtype=np.uint8)
    if black:
        rgb[0, 0] = 0
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def files_under(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def contains(root, needle: bytes) -> list[str]:
    hits = []
    for rel in files_under(root):
        with open(os.path.join(root, rel), "rb") as f:
            if needle in f.read():
                hits.append(rel)
    return hits


@pytest.fixture
def store(tmp_path):
    s = PhotoStore(str(tmp_path / "store"), FakePreprocessor())
    yield s
    s.close()


def test_consent_is_required(store):
    for consent in (False, None, "yes", 1):
        with pytest.raises(ConsentError, match="consent"):
            store.add("alice", photo_bytes(0), consent=consent)
    assert store.list("alice") == []
    assert files_under(os.path.join(store.root, "photos")) == []


def test_add_keeps_preprocessing_outputs(store):
    data = photo_bytes(1)
    rec = store.add("alice", data, consent=True, name="../../etc/me.png")
    assert rec.name == "me.png" and rec.bytes == len(data) and (rec.width, rec.height) == (48, 64)
    assert rec.consent_text and "owner" not in rec.public()
    person = store.person("alice", rec.id)
    want = FakePreprocessor().prepare(data, "x")
    np.testing.assert_array_equal(person.image, want.image)
    np.testing.assert_array_equal(person.label, want.label)
    np.testing.assert_allclose(person.keypoints, want.keypoints)
    with open(store.file("alice", rec.id, "original"), "rb") as f:
        assert f.read() == data
    assert [r.id for r in store.list("alice")] == [rec.id]


def test_owners_cannot_reach_each_other(store):
    a = store.add("alice", photo_bytes(2), consent=True)
    store.cache_result("alice", a.id, "g1", "m", b"png")
    assert store.list("bob") == []
    for call in (lambda: store.get("bob", a.id), lambda: store.person("bob", a.id),
                 lambda: store.file("bob", a.id, "person.png"), lambda: store.delete("bob", a.id),
                 lambda: store.cached_result("bob", a.id, "g1", "m"),
                 lambda: store.cache_result("bob", a.id, "g1", "m", b"x")):
        with pytest.raises(NotFound):
            call()
    assert store.cached_result("alice", a.id, "g1", "m") == b"png"
    assert [r.id for r in store.list("alice")] == [a.id]
    for bad in ("../photos", "", "x" * 200, "a/b" * 10):  # ids never reach the file system unchecked
        with pytest.raises(NotFound):
            store.get("alice", bad)


def test_delete_leaves_nothing(store):
    data = photo_bytes(3)
    keep = store.add("alice", photo_bytes(4), consent=True, name="keep.png")
    rec = store.add("alice", data, consent=True, name="secret-name.png")
    store.cache_result("alice", rec.id, "g1", "model", b"\x89PNG result bytes 123")
    store.delete("alice", rec.id)
    assert [r.id for r in store.list("alice")] == [keep.id]
    with pytest.raises(NotFound):
        store.get("alice", rec.id)
    with pytest.raises(NotFound):
        store.delete("alice", rec.id)
    for needle in (rec.id.encode(), b"secret-name", data[-64:], b"PNG result bytes 123"):
        assert contains(store.root, needle) == [], needle
    assert contains(store.root, b"keep.png")  # the other photo is still there
    assert not any(rec.id in f for f in files_under(store.root))


def test_refused_photo_stores_nothing(store):
    with pytest.raises(PersonError, match="no person"):
        store.add("alice", photo_bytes(5, black=True), consent=True)
    assert store.list("alice") == []
    assert files_under(os.path.join(store.root, "photos")) == files_under(os.path.join(store.root, "tmp")) == []


def test_retention(tmp_path):
    now = [1_000_000.0]
    s = PhotoStore(str(tmp_path / "s"), FakePreprocessor(), retention_days=2, max_photos=3, clock=lambda: now[0])
    old = s.add("alice", photo_bytes(6), consent=True)
    now[0] += 86400
    new = s.add("alice", photo_bytes(7), consent=True)
    s.add("bob", photo_bytes(8), consent=True)
    now[0] += 1.5 * 86400  # old is 2.5 days old, new 1.5
    assert s.purge_expired() == 1
    assert [r.id for r in s.list("alice")] == [new.id]
    assert not os.path.exists(os.path.join(s.root, "photos", old.id))
    s.add("alice", photo_bytes(9), consent=True)
    s.add("alice", photo_bytes(10), consent=True)
    with pytest.raises(LimitError, match="3 photos"):
        s.add("alice", photo_bytes(11), consent=True)
    s.close()
    now[0] += 10 * 86400  # everything expired: purged when the store opens
    s = PhotoStore(str(tmp_path / "s"), FakePreprocessor(), retention_days=2, clock=lambda: now[0])
    assert s.stats() == {"photos": 0, "owners": 0}
    assert files_under(os.path.join(s.root, "photos")) == []


# --- killed processes ---------------------------------------------------------------------------

KILLER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from tests.test_store import FakePreprocessor, photo_bytes
    from tryon_jax.serving import store as store_lib
    s = store_lib.PhotoStore({path!r}, FakePreprocessor())
    done = s.add("alice", photo_bytes(100), consent=True)
    print(done.id, flush=True)
    die = lambda *a, **k: os.kill(os.getpid(), 9)
    where = {where!r}
    if where == "before_rename":      # files written in tmp, not yet moved
        store_lib.os.rename = die
    elif where == "before_commit":    # folder in place, row not yet inserted
        store_lib._fsync_dir = lambda p: die() if p.endswith("photos") else None
    elif where == "mid_delete":       # row gone, folder moved to trash, not yet removed
        store_lib.shutil.rmtree = die
    elif where == "mid_file":         # half of a file written
        real_open = open
        def half_open(path, mode="r", *a, **k):
            f = real_open(path, mode, *a, **k)
            if "tmp" in str(path) and "w" in mode:
                f.write(b"partial"); f.flush(); die()
            return f
        store_lib.open = half_open
    if where == "mid_delete":
        s.delete("alice", done.id)
    else:
        s.add("alice", photo_bytes(101), consent=True)
    print("not killed", flush=True)
""")


@pytest.mark.parametrize("where", ["mid_file", "before_rename", "before_commit", "mid_delete"])
def test_killed_process_leaves_a_consistent_store(tmp_path, where):
    path = str(tmp_path / "store")
    proc = subprocess.run([sys.executable, "-c", KILLER.format(root=ROOT, path=path, where=where)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    first = proc.stdout.split()[0]
    s = PhotoStore(path, FakePreprocessor())
    ids = [r.id for r in s.list("alice")]
    assert ids == ([] if where == "mid_delete" else [first])
    # every row has its complete folder, and nothing else is left on disk
    assert sorted(os.listdir(os.path.join(path, "photos"))) == ids
    assert os.listdir(os.path.join(path, "tmp")) == os.listdir(os.path.join(path, "trash")) == []
    for photo_id in ids:
        s.person("alice", photo_id)
    s.add("alice", photo_bytes(102), consent=True)  # and it goes on working
    assert len(s.list("alice")) == len(ids) + 1
