"""Musinsa's JSON, validated: listing pages (PLP) and product details -> plain records.

Shapes follow ../shared/data/musinsa/FACTS.md; anything else raises SchemaError naming the URL
and the problem (the crawler records it in failed.jsonl or stops paging, never crashes).
"""
import json

LISTING_PATH = "/api2/dp/v1/plp/goods"
DETAIL_PATH = "/api2/goods/{goods_no}"


class SchemaError(ValueError):
    pass


def _json(body: bytes, url: str):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SchemaError(f"{url}: not valid JSON ({e.__class__.__name__}: {e})") from e


def _need(obj, key, kind, url, where):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SchemaError(f"{url}: {where}{key} missing or not {getattr(kind, '__name__', kind)}")
    return value


def _data(body: bytes, url: str) -> dict:
    """The ``data`` object of a {data, meta} envelope; an API error (meta.result != SUCCESS) raises."""
    payload = _json(body, url)
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if isinstance(meta, dict) and meta.get("result") not in (None, "SUCCESS"):
        raise SchemaError(f"{url}: API error {meta.get('errorCode')!r}: {meta.get('message')!r}")
    return _need(payload, "data", dict, url, "")


def parse_listing(body: bytes, url: str) -> tuple[list[dict], bool]:
    """(entries, has_next) of one listing page; entries keep goodsNo and the listing fields."""
    data = _data(body, url)
    entries = _need(data, "list", list, url, "data.")
    out = []
    for i, entry in enumerate(entries):
        goods_no = _need(entry, "goodsNo", int, url, f"data.list[{i}].")
        out.append({"goodsNo": goods_no, "name": entry.get("goodsName"), "brand": entry.get("brandName"),
                    "gender": entry.get("displayGenderText"), "price": entry.get("price"), "isAd": entry.get("isAd")})
    page = data.get("pagination") if isinstance(data.get("pagination"), dict) else {}
    has_next = bool(page.get("hasNext", False)) and bool(entries)
    if isinstance(page.get("page"), int) and isinstance(page.get("totalPages"), int):
        has_next = has_next and page["page"] < page["totalPages"]
    return out, has_next


def parse_detail(body: bytes, url: str) -> dict:
    """The fields kept per item, plus ``image_paths`` (main photo first, relative paths)."""
    data = _data(body, url)
    goods_no = _need(data, "goodsNo", int, url, "data.")
    thumb = _need(data, "thumbnailImageUrl", str, url, "data.")
    extra = data.get("goodsImages") or []
    if not isinstance(extra, list) or not all(isinstance(x, dict) and isinstance(x.get("imageUrl"), str)
                                              for x in extra):
        raise SchemaError(f"{url}: data.goodsImages is not a list of {{imageUrl}}")
    price = data.get("goodsPrice") if isinstance(data.get("goodsPrice"), dict) else {}
    brand = data.get("brandInfo") if isinstance(data.get("brandInfo"), dict) else {}
    category = data.get("category") if isinstance(data.get("category"), dict) else {}
    return {"goodsNo": goods_no, "name": data.get("goodsNm"), "brand": brand.get("brandName"),
            "gender": data.get("genders"), "price": price.get("salePrice", price.get("normalPrice")),
            "normal_price": price.get("normalPrice"), "sale_type": data.get("goodsSaleType"),
            "category_depth1": category.get("categoryDepth1Code"), "subcategory": category.get("categoryDepth2Code"),
            "image_paths": [thumb] + [x["imageUrl"] for x in extra]}


def image_candidates(path: str) -> list[str]:
    """The large rendition first when the API gave a _500 one, then the API's own URL."""
    if path.endswith("_500.jpg"):
        return [path[: -len("_500.jpg")] + "_big.jpg", path]
    return [path]
