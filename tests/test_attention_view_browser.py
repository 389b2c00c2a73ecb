"""The attention view in a real browser, used as a person would: headless
Chromium opens the saved page from disk with no network, the mouse hovers a
token, the keyboard tabs to one, and the weights the page highlights are read
back and compared with the model's. The page must make no request beyond its
own file. Screenshots are kept in the test's temporary folder.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them where
it can) and `selenium`; skipped with the reason otherwise.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from attention_pages import small_captioner, small_model

import tf_transformer as tt
from tf_transformer.inference import attention_view

pytestmark = pytest.mark.slow

TOLERANCE = 0.5 / 255 + 1e-4  # stored in 1/255 steps, shown with 4 decimals


def _browser_paths():
    chromium = next(
        filter(
            None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
        ),
        None,
    )
    return chromium, shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    if chromium is None or driver_path is None:
        pytest.skip(
            "headless Chromium is not installed (Debian: apt-get install chromium "
            "chromium-driver; .ci/run does this where it runs as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    # Every network event of the page, to prove it asks for nothing.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    # No network at all: a request would fail rather than reach anything.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    yield driver
    driver.quit()


def open_page(browser, path):
    browser.get_log("performance")  # forget earlier pages' events
    browser.get(path.as_uri())
    browser.find_element("css selector", ".tf-attention[data-ready]")
    return path.as_uri()


def requests_made(browser):
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def hover(browser, element):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(element).perform()


def tokens(browser, side):
    return browser.find_elements("css selector", f".tfa-side-{side} .tfa-token")


def shown_weights(browser, side):
    """(heads, tokens) weights the page shows on the tokens of `side`."""
    return np.array(
        [
            [
                float(cell.get_attribute("data-weight"))
                for cell in token.find_elements("css selector", ".tfa-cell")
            ]
            for token in tokens(browser, side)
        ]
    ).T


def choose(browser, css, value):
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", css)).select_by_value(str(value))


def screenshot(browser, folder, name):
    path = folder / name
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("attention_view_screenshots")


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    model = small_model(
        tt.Transformer,
        seed=3,
        d_model=32,
        dff=64,
        input_vocab_size=40,
        target_vocab_size=40,
    )
    source = np.array([[2, 11, 12, 13, 14, 15, 3]], "int32")
    target = np.array([[2, 21, 22, 23, 24]], "int32")
    words = ["[START]", "the", "black", "cat", "sleeps", "here", "[END]"]
    french = ["[START]", "le", "chat", "noir", "dort"]
    view = attention_view(
        model,
        (source, target),
        tokens=(words, french),
        title="a Transformer with random weights",
    )
    path = view.save(tmp_path_factory.mktemp("page") / "translation.html")
    _, weights = model((source, target), return_attention_scores=True)
    cross = np.stack([w[0].numpy() for w in weights["decoder_cross_attention"]])
    encoder = np.stack([w[0].numpy() for w in weights["encoder"]])
    return Path(path), cross, encoder


def test_hovering_a_token_shows_every_heads_weights_of_the_model(
    browser, translation, artifacts
):
    path, cross, _ = translation
    page = open_page(browser, path)
    hover(browser, tokens(browser, "query")[2])  # "chat", cross-attention, layer 1
    np.testing.assert_allclose(
        shown_weights(browser, "key"), cross[0, :, 2], atol=TOLERANCE
    )
    status = browser.find_element("css selector", ".tfa-status").text
    assert "“chat” (position 3), layer 1" in status
    choose(browser, ".tfa-layer", 1)
    hover(browser, tokens(browser, "query")[4])
    np.testing.assert_allclose(
        shown_weights(browser, "key"), cross[1, :, 4], atol=TOLERANCE
    )
    # the other direction: a source word, and how much each target word reads it
    hover(browser, tokens(browser, "key")[3])
    np.testing.assert_allclose(
        shown_weights(browser, "query"), cross[1, :, :, 3], atol=TOLERANCE
    )
    screenshot(browser, artifacts, "translation_cross_attention.png")
    assert requests_made(browser) == [page]


def test_the_keyboard_reaches_tokens_and_pins_one(browser, translation, artifacts):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    path, _, encoder = translation
    page = open_page(browser, path)
    choose(browser, ".tfa-kind", 0)  # encoder self-attention
    browser.find_element("css selector", ".tfa-title").click()
    for _ in range(30):  # Tab through the controls to the first token
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        if "tfa-token" in (active.get_attribute("class") or ""):
            break
    else:
        pytest.fail("Tab never reached a token")
    assert active.get_attribute("data-side") == "query"
    ActionChains(browser).send_keys(
        Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ENTER
    ).perform()
    pinned = browser.switch_to.active_element
    assert pinned.get_attribute("data-index") == "2"
    assert pinned.get_attribute("aria-pressed") == "true"
    # the mouse passing over another token and leaving it keeps the pinned one
    hover(browser, tokens(browser, "query")[5])
    hover(browser, browser.find_element("css selector", ".tfa-title"))
    np.testing.assert_allclose(
        shown_weights(browser, "key"), encoder[0, :, 2], atol=TOLERANCE
    )
    # a head switched off is no longer shown
    browser.find_element(
        "css selector", ".tfa-heads-legend input[data-head='1']"
    ).click()
    hidden = browser.find_elements(
        "css selector", ".tfa-side-key .tfa-cell[data-head='1']"
    )
    assert all(cell.get_attribute("data-weight") is None for cell in hidden)
    screenshot(browser, artifacts, "translation_keyboard_pinned.png")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert "no token chosen" in browser.find_element("css selector", ".tfa-status").text
    assert requests_made(browser) == [page]


def test_dark_and_light_themes_follow_the_system(browser, translation, artifacts):
    path, _, _ = translation
    luminance = {}
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        open_page(browser, path)
        hover(browser, tokens(browser, "query")[1])
        colour = browser.execute_script(
            "return getComputedStyle(document.querySelector('.tf-attention'))"
            ".backgroundColor"
        )
        red, green, blue = [
            int(c) for c in colour[colour.index("(") + 1 : -1].split(",")[:3]
        ]
        luminance[scheme] = (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255
        screenshot(browser, artifacts, f"translation_{scheme}.png")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert luminance["light"] > 0.8 and luminance["dark"] < 0.2


def test_the_picture_shows_the_weights_over_its_patches(browser, tmp_path, artifacts):
    model = small_captioner(num_heads=2)
    image = np.zeros((8, 24, 1), "float32")  # black: the tint is the weight alone
    target = np.array([[2, 5, 6, 7]], "int32")
    path = attention_view(
        model, (image, target), tokens=["[fr]", "six", "cent", "un"]
    ).save(tmp_path / "caption.html")
    _, weights = model((image[np.newaxis], target), return_attention_scores=True)
    cross = weights["decoder_cross_attention"][0][0].numpy()  # (heads, 4, 12)
    page = open_page(browser, Path(path))
    hover(browser, tokens(browser, "query")[1])
    for head, colour in ((0, (31, 119, 180)), (1, (255, 127, 14))):
        # centre pixel of each patch: the head's colour at 0.85 x weight / max
        pixels = browser.execute_script(
            """
            const head = arguments[0];
            const canvas = document.querySelector(
              `.tfa-figure canvas[data-head="${head}"]`);
            const scale = canvas.width / 24, out = [];
            const context = canvas.getContext('2d');
            for (let patch = 0; patch < 12; patch++) {
              const x = ((patch % 6) * 4 + 2) * scale;
              const y = (Math.floor(patch / 6) * 4 + 2) * scale;
              out.push(Array.from(context.getImageData(x, y, 1, 1).data));
            }
            return out;
            """,
            head,
        )
        row = np.round(cross[head, 1] * 255) / 255  # as the page stores it
        expected = 0.85 * row[:, None] / row.max() * np.array(colour)[None, :]
        np.testing.assert_allclose(np.array(pixels)[:, :3], expected, atol=2.5)
    screenshot(browser, artifacts, "caption_patches.png")
    assert requests_made(browser) == [page]


def test_a_hundred_tokens_fit_and_respond(browser, tmp_path, artifacts):
    model = small_model(tt.CausalLM, vocabulary_size=60, max_length=128)
    ids = np.random.default_rng(0).integers(4, 60, size=100).astype("int32")
    words = [f"w{i}" for i in ids]
    path = attention_view(model, ids, tokens=words, prompt_length=40).save(
        tmp_path / "hundred.html"
    )
    page = open_page(browser, Path(path))
    assert len(tokens(browser, "query")) == len(tokens(browser, "key")) == 100
    assert (
        len(browser.find_elements("css selector", ".tfa-side-query .tfa-generated"))
        == 60
    )
    hover(browser, tokens(browser, "query")[50])
    shown = shown_weights(browser, "key")
    assert np.all(shown[:, 51:] == 0) and np.allclose(shown.sum(axis=1), 1, atol=0.15)
    _, weights = model(ids[np.newaxis], return_attention_scores=True)
    np.testing.assert_allclose(shown, weights[0][0, :, 50].numpy(), atol=TOLERANCE)
    sides = browser.find_element("css selector", ".tfa-sides").size
    assert sides["height"] < 700  # both sides of 100 tokens on one screen
    screenshot(browser, artifacts, "causal_lm_100_tokens.png")
    assert requests_made(browser) == [page]
