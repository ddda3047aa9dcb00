"""End to end in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): upload a shipped photo with consent, try a garment on, see the result, delete the
photo and check it is gone from the page and from the store.

Set TRYON_SCREENSHOT=PATH to also save a screenshot of the whole page with the result, and
TRYON_WEB_EXPORT=DIR to serve that export instead of the demo-sized model with fresh weights
(docs/screenshot.png: the export of configs/demo.py's trained model, see docs/README.md)."""
import os
import shutil

import pytest
from PIL import Image

from tests import serve_fixtures as sf
from tryon_jax.data.catalogue import Catalogue
from tryon_jax.serving import app
from tryon_jax.serving.store import CONSENT_TEXT, PhotoStore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    import selenium  # noqa: F401
    _missing = None
except ImportError:
    _missing = "selenium is not installed (pip install -e '.[test]')"
if not _missing and not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    _missing = "no browser: install Debian's chromium and chromium-driver (.ci/run does)"
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                 "--window-size=1200,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tryon_jax.person.preprocessor import PersonPreprocessor
    from tryon_jax.serving.served_model import ExportedTryOn
    root = tmp_path_factory.mktemp("web")
    export_dir = os.environ.get("TRYON_WEB_EXPORT") or sf.small_export(str(root / "export"))
    model = ExportedTryOn(export_dir, max_batch=4)
    catalogue = Catalogue.load(sf.crawl_catalogue(str(root / "crawl")))
    store = PhotoStore(str(root / "store"), PersonPreprocessor())
    with sf.RunningServer(app.TryOnService(model, catalogue, store, app.Settings(max_batch=4))) as running:
        yield running


def _wait(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def test_upload_tryon_delete_in_a_browser(browser, server):
    from selenium.webdriver.common.by import By
    store = server.service.store
    ready = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready"  # noqa: E731
    browser.get(server.url + "/")
    _wait(browser, ready)
    assert browser.find_element(By.ID, "consent-text").text == CONSENT_TEXT  # the text consented to
    assert len(browser.find_elements(By.CSS_SELECTOR, "#garments .garment-card")) == 12
    unavailable = browser.find_elements(By.CSS_SELECTOR, "#garments .garment-card.unavailable")
    assert len(unavailable) == 5 and all("Not yet available for try-on" in c.text for c in unavailable)
    unavailable[0].click()  # a bottom cannot be picked: the page says why
    _wait(browser, lambda d: "no lower-body model" in d.find_element(By.ID, "message").text)
    assert not browser.find_element(By.ID, "tryon-button").is_enabled()

    # without consent nothing is uploaded
    photo = sf.photo_paths()[0]
    browser.find_element(By.ID, "photo-input").send_keys(photo)
    browser.find_element(By.ID, "upload-button").click()
    _wait(browser, lambda d: "consent" in d.find_element(By.ID, "message").text.lower())
    assert store.stats()["photos"] == 0

    browser.find_element(By.ID, "consent").click()
    browser.find_element(By.ID, "upload-button").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#photos .photo-card"))
    _wait(browser, ready)
    assert store.stats() == {"photos": 1, "owners": 1}
    card = browser.find_element(By.CSS_SELECTOR, "#photos .photo-card")
    photo_id = card.get_attribute("data-photo-id")
    card.click()

    # the filter shows only tops; try the first top on
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.ID, "category-filter")).select_by_value("top")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#garments .garment-card")) == 7)
    _wait(browser, ready)
    browser.find_element(By.CSS_SELECTOR, "#garments .garment-card").click()
    button = browser.find_element(By.ID, "tryon-button")
    _wait(browser, lambda d: button.is_enabled())
    button.click()
    loaded = "const i = document.getElementById('result-image'); return i.complete && i.naturalWidth;"
    width = _wait(browser, lambda d: d.execute_script(loaded))
    assert width == Image.open(photo).size[0]  # the try-on put back into the photo
    assert browser.find_element(By.ID, "result").is_displayed()
    browser.find_element(By.ID, "view-button").click()  # the model's own picture
    framed = "const i = document.getElementById('result-image'); return i.complete && i.naturalWidth == %d;"
    _wait(browser, lambda d: d.execute_script(framed % server.service.model.output_size[1]))
    assert "256" in browser.find_element(By.ID, "result-caption").text
    owner = app.owner_id(browser.get_cookie(app.SESSION_COOKIE)["value"])
    assert [r.id for r in store.list(owner)] == [photo_id]
    assert os.listdir(os.path.join(store.root, "photos", photo_id, "results"))  # cached with the photo
    if os.environ.get("TRYON_SCREENSHOT"):
        browser.set_window_size(1200, browser.execute_script("return document.documentElement.scrollHeight") + 140)
        browser.save_screenshot(os.environ["TRYON_SCREENSHOT"])
        browser.set_window_size(1200, 1500)

    # a phone-width screen: one column, nothing wider than the screen
    browser.set_window_size(390, 844)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.set_window_size(1200, 1500)

    # delete (two clicks: arm, confirm); the photo is gone from the page and from the store
    delete = browser.find_element(By.CSS_SELECTOR, f".photo-card[data-photo-id='{photo_id}'] .delete-button")
    delete.click()
    delete.click()
    _wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "#photos .photo-card"))
    assert store.list(owner) == []
    assert not os.path.exists(os.path.join(store.root, "photos", photo_id))
    browser.refresh()
    _wait(browser, ready)
    assert not browser.find_elements(By.CSS_SELECTOR, "#photos .photo-card")
