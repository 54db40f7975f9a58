"""The demo page's "type as it streams" mode in a real browser: keys go to /v1/stream/ws as they are typed."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.serve.test_demo import browser, page, state  # noqa: F401 - the browser and page fixtures


def test_type_as_it_streams_speaks_the_first_sentence_while_typing_goes_on(page: Page) -> None:  # noqa: F811
    page.get_by_label("Type as it streams").check()
    assert page.get_by_role("button", name="End").is_visible()
    box = page.get_by_label("Text", exact=True)
    box.fill("")
    box.focus()
    page.keyboard.type("The first sentence is typed here. The sec", delay=15)
    page.wait_for_function("window.demoState.chunks >= 1", timeout=60_000)  # typing has not ended
    assert state(page)["streamEndAt"] is None
    page.keyboard.type("ond one follows it.", delay=15)
    box.press("Control+Enter")
    page.wait_for_function("window.demoState.streamEndAt !== null", timeout=60_000)
    done = state(page)
    assert done["error"] is None, done["error"]
    assert done["liveFragments"] >= 50  # about one fragment per key
    assert done["firstAudioAt"] < done["streamEndAt"] and done["marks"] >= 8
    page.wait_for_function("window.demoState.wordsHighlighted >= 4", timeout=30_000)
    assert page.locator("#status").inner_text() == "streamed"
