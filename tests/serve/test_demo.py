"""The demo page in a real browser (Debian's chromium driven by Playwright) against the live service."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ARTIFACTS = Path(os.environ.get("VOXSTACK_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
]
LONG = " ".join(f"Sentence {n} of the demo keeps the stream going for a little while." for n in range(1, 7))


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is required: apt-get install chromium (make test installs it as root)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, service) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(service.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0", timeout=30_000)
    yield page
    context.close()


def cancelled(service) -> int:
    """The last stage's cancelled-stream count (asked from a thread: Playwright owns this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(service.stats, "ChunkStats").result()["cancelled"]


def state(page: Page) -> dict:
    return page.evaluate("() => ({...window.demoState})")


def test_speaks_while_streaming_highlights_words_and_is_keyboard_driven(page: Page):
    assert page.get_by_label("Text", exact=True).is_visible() and page.get_by_label("Seed").is_visible()
    page.get_by_label("Text", exact=True).fill(LONG)
    page.get_by_label("Text", exact=True).press("Control+Enter")  # keyboard alone
    page.wait_for_function("window.demoState.chunks >= 2 && window.demoState.wordsHighlighted >= 1",
                           timeout=60_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-mid-playback.png"), full_page=True)
    mid = state(page)
    assert mid["streamEndAt"] is None, "the screenshot should catch the stream still running"
    page.wait_for_function("window.demoState.streamEndAt !== null", timeout=120_000)
    page.wait_for_function("window.demoState.wordsHighlighted >= 4", timeout=60_000)
    done = state(page)
    assert done["error"] is None, done["error"]
    assert done["firstAudioAt"] < done["streamEndAt"]
    assert done["firstPlaybackAt"] < done["streamEndAt"], "playback must start before the stream ends"
    assert done["variant"] in ("Encoders", "CustomizedEncoders")
    assert page.locator("#variant").inner_text() == done["variant"]
    assert page.locator("#first-audio").inner_text().endswith(" ms")
    assert page.locator("#words span.spoken, #words span.current").count() >= 4


def test_stop_ends_the_stream_on_the_server(page: Page, service):
    before = cancelled(service)
    page.get_by_label("Text", exact=True).fill(LONG * 3)
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("window.demoState.chunks >= 1", timeout=60_000)
    page.keyboard.press("Escape")  # the Stop shortcut; the button does the same
    assert page.locator("#status").inner_text() == "stopped"
    deadline = time.time() + 30
    while cancelled(service) <= before:
        assert time.time() < deadline, "the server never saw the stream cancelled"
        time.sleep(0.25)
    assert state(page)["streamEndAt"] is None
    assert page.get_by_role("button", name="Speak").is_enabled()
    assert page.get_by_role("button", name="Stop").is_disabled()


def test_empty_text_shows_the_error_on_the_page(page: Page):
    page.get_by_label("Text", exact=True).fill("   ")
    page.get_by_role("button", name="Speak").click()
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=30_000)
    assert "empty" in alert.inner_text()
    assert page.locator("#status").inner_text() == "failed"


def test_the_voice_picker_lists_the_models_voices_with_their_language(page: Page, service):
    voices = service.http.get("/v1/audio/voices", params={"model": page.locator("#model").input_value()}).json()
    expected = [f"{v['name']} ({v['language']})" for v in voices["voices"]]
    assert page.locator("#voice option").all_inner_texts() == expected
    assert page.locator("#voice").input_value() == voices["voices"][0]["name"]


def test_under_a_route_prefix_it_speaks_kokoro_and_highlights_japanese_words(browser: Browser, service):
    """The page at ``/placed/`` talks to its own application; a run of kana and kanji is split into the words
    the marks name as they are spoken."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(service.url + "/placed/")
        page.wait_for_function("[...document.querySelectorAll('#model option')].some(o => o.value === 'kokoro-ja')",
                               timeout=30_000)
        page.locator("#model").select_option("kokoro-ja")
        page.get_by_label("Text", exact=True).fill("東京の天気は、午後から雨になる見込みです。")
        page.get_by_role("button", name="Speak").click()
        page.wait_for_function("window.demoState.streamEndAt !== null", timeout=120_000)
        page.wait_for_function("window.demoState.wordsHighlighted >= 11", timeout=60_000)
        assert state(page)["error"] is None
        spoken = page.locator("#words span.spoken, #words span.current").all_inner_texts()
        assert spoken == ["東京", "の", "天気", "は", "午後", "から", "雨", "に", "なる", "見込み", "です"]
        assert page.locator("#words").inner_text() == "東京の天気は、午後から雨になる見込みです。"
    finally:
        context.close()
