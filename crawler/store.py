"""The crawl output folder: items.jsonl (one finished item per line), failed.jsonl, images/.

Images are written atomically (temp file + rename) before their item's line is appended and
fsynced, so a line means a complete item. On open, a torn last line (a crash mid-write) is
dropped by an atomic rewrite; finished goodsNo are skipped on resume.
"""
import json
import os

from tryon_jax.core.files import atomic_write

ITEMS, FAILED, IMAGES = "items.jsonl", "failed.jsonl", "images"


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    records, torn = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                torn = True
    if torn:
        with atomic_write(path, "w") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return records


class Store:
    def __init__(self, out: str):
        self.out = out
        os.makedirs(os.path.join(out, IMAGES), exist_ok=True)
        self.items = _read_jsonl(os.path.join(out, ITEMS))
        self.finished = {r["goodsNo"] for r in self.items}
        failed = _read_jsonl(os.path.join(out, FAILED))
        self.failed = {r["goodsNo"] for r in failed if "goodsNo" in r}

    def image_path(self, goods_no: int, name: str) -> str:
        return os.path.join(self.out, IMAGES, str(goods_no), name)

    def write_image(self, goods_no: int, name: str, data: bytes) -> str:
        path = self.image_path(goods_no, name)
        with atomic_write(path) as f:
            f.write(data)
        return os.path.relpath(path, self.out)

    def _append(self, name: str, record: dict) -> None:
        with open(os.path.join(self.out, name), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add_item(self, record: dict) -> None:
        self._append(ITEMS, record)
        self.items.append(record)
        self.finished.add(record["goodsNo"])

    def add_failed(self, goods_no, reason: str) -> None:
        self._append(FAILED, {"goodsNo": goods_no, "reason": reason})
        self.failed.add(goods_no)
