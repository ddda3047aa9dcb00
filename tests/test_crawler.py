"""The crawler end to end against the local imitation server: robots.txt refusal by default,
a full crawl (dedupe, large images with fallback, verified photos), and resume after a stop."""
import hashlib
import json

import pytest
from aiohttp import web

from crawler.__main__ import main
from tests.musinsa_server import FIXTURES, MusinsaServer

ROBOTS_WWW = (FIXTURES / "robots" / "www_musinsa_as_reported_2025-10-24.txt").read_text()
FAST = ["--rate", "200", "--concurrency", "4"]


def _items(out):
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def test_refuses_by_default_when_robots_disallow(tmp_path, capsys):
    with MusinsaServer(robots=ROBOTS_WWW) as server:
        code = main(server.args(tmp_path, "--category", "001", "--max-items", "5"))
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("crawl stopped: robots.txt") and "--no-obey-robots" in err[-1]
    assert server.paths() == ["/robots.txt"]


def test_full_crawl_dedupes_verifies_and_prefers_large_images(tmp_path):
    with MusinsaServer() as server:
        code = main(server.args(tmp_path, "--category", "001", "--category", "003", "--max-items", "30",
                                "--page-size", "20", *FAST))
    assert code == 0
    items = _items(tmp_path)
    numbers = [i["goodsNo"] for i in items]
    # 001: 40 listed over 2 pages, 3 repeats (ad + ranking drift) -> 30 of 37; 003: 20 on one page.
    assert len(numbers) == 50 == len(set(numbers))
    assert {i["category"] for i in items} == {"top", "bottom"}
    for item in items:
        for image in item["images"]:
            data = (tmp_path / image["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == image["sha256"]
    by_no = {i["goodsNo"]: i for i in items}
    assert by_no[4117865]["images"][0]["large"] is True  # _big exists for this good
    assert by_no[4160088]["images"][0]["large"] is False  # _big 404 -> the API's _500
    assert not (tmp_path / "failed.jsonl").exists()
    assert all(ua == server.log[0][2] and ua.startswith("TryOnResearchBot/") for _, _, ua in server.log)


def test_resume_after_a_challenge_ends_like_an_uninterrupted_crawl(tmp_path):
    args = ["--category", "001", "--max-items", "25", "--page-size", "20", *FAST]
    with MusinsaServer() as server:
        assert main(server.args(tmp_path / "full", *args)) == 0

    def challenge(request, count):
        if count > 40:
            return web.Response(status=403, text="<title>Just a moment...</title>",
                                headers={"cf-mitigated": "challenge"})
        return None
    with MusinsaServer(faults={"*": [challenge]}) as server:
        assert main(server.args(tmp_path / "part", *args)) == 3
        stopped_at = len(server.log)
    assert stopped_at <= 41 + 4  # nothing after the challenge but requests already in flight
    done = {i["goodsNo"] for i in _items(tmp_path / "part")}
    assert 0 < len(done) < 25
    with MusinsaServer() as server:
        assert main(server.args(tmp_path / "part", *args)) == 0
        refetched = [p for p in server.paths() if p.startswith("/api2/goods/") and int(p.rsplit("/", 1)[-1]) in done]
    assert not refetched
    full, part = _items(tmp_path / "full"), _items(tmp_path / "part")
    key = lambda items: sorted((i["goodsNo"], tuple(im["sha256"] for im in i["images"])) for i in items)  # noqa: E731
    assert key(full) == key(part)


@pytest.mark.parametrize("argv", [["--category", "01"], ["--category", "001", "--rate", "0"]])
def test_bad_arguments(tmp_path, argv):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), *argv])
    assert e.value.code == 2
