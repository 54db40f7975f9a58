"""Hostile input over HTTP: schemathesis fuzzes the service from its own OpenAPI spec, then text edge cases.

Every answer must be a 2xx or a 4xx with a JSON error (never a 5xx), within a timeout (never a hang).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.serve.conftest import Service

CALL_TIMEOUT_S = 30
EXAMPLES = 120


def test_api_answers_every_generated_request(service: Service) -> None:
    """Valid and invalid requests for every operation of the spec, ``EXAMPLES`` in all (about 30 s)."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/stream", "/v1/audio/speech", "/v1/models", "/healthz"}
    cases = st.one_of(*(op.as_strategy(mode) for op in operations for mode in GenerationMode))
    seen: dict[int, int] = {}

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def answer(case: Any) -> None:
        response = case.call(base_url=service.url, timeout=CALL_TIMEOUT_S)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.path, response.status_code, response.text[:300])
        if response.status_code >= 400:
            error = response.json().get("error")
            assert error and error["message"] and error["type"], (case.method, case.path, response.status_code,
                                                                   response.text[:300])
        elif case.path == "/v1/stream":
            lines = [json.loads(line) for line in response.text.splitlines()]
            assert lines[0]["type"] == "start" and lines[-1]["type"] in ("end", "error"), lines[-1]

    answer()
    print(f"\nfuzzed {sum(seen.values())} requests: status counts {dict(sorted(seen.items()))}")
    assert any(code < 300 for code in seen) and any(400 <= code < 500 for code in seen), seen


def _stream(service: Service, text: str, **extra: Any) -> tuple[int, list[dict[str, Any]]]:
    r = service.http.post("/v1/stream", json={"model": "piper-joe", "input": text, "marks": ["word"], **extra},
                          timeout=CALL_TIMEOUT_S)
    if r.status_code != 200:
        return r.status_code, [r.json()]
    return 200, [json.loads(line) for line in r.text.splitlines()]


def _words(records: list[dict[str, Any]]) -> list[str]:
    return [m["value"] for r in records if r["type"] == "marks" for m in r["marks"] if m["type"] == "word"]


@pytest.mark.parametrize("text", ["?!.,;:…—()\"'", "\u200b\u200d\ufeff", "\x00\x01\x07\x1b"])
def test_nothing_to_say_is_a_400_on_input(service: Service, text: str) -> None:
    status, records = _stream(service, text)
    assert status == 400 and records[0]["error"]["param"] == "input", records


def test_fifty_thousand_characters_are_refused_by_the_limit(service: Service) -> None:
    status, records = _stream(service, "word " * 10_000)
    assert status == 400 and records[0]["error"]["param"] == "input"
    assert "20000" in records[0]["error"]["message"].replace(",", ""), records


@pytest.mark.parametrize("text", [
    "Hello\x00 there,\x07 world\x1b[31m in red\x7f.",   # control characters are dropped
    "Line one.\r\nLine two.\tTabbed.\u2028Separated.",
    "The word مرحبا and the word שלום sit in English text.",
    "مرحبا بالعالم. שלום עולם.",
    "Emoji 😀 between words 🎉 are skipped.",
    "😀🎉🚀🌍👍🏽",
])
def test_odd_text_streams_to_the_end(service: Service, text: str) -> None:
    status, records = _stream(service, text)
    assert status in (200, 400), records
    if status == 200:
        assert records[0]["type"] == "start" and records[-1]["type"] == "end", records[-1]
        for mark in (m for r in records if r["type"] == "marks" for m in r["marks"]):
            assert 0 <= mark["start"] <= mark["end"] <= len(text.encode()), mark
    else:
        assert records[0]["error"]["param"] == "input", records


def test_ssml_looking_tags_are_read_as_text(service: Service) -> None:
    text = '<speak>Hello <break time="5s"/> <emphasis level="strong">world</emphasis></speak>'
    status, records = _stream(service, text)
    assert status == 200 and records[-1]["type"] == "end", records[-1]
    words = " ".join(_words(records)).lower()
    assert "speak" in words and "emphasis" in words, words  # the tags are spoken, not obeyed
    _, plain = _stream(service, "Hello world")
    assert records[-1]["seconds"] > plain[-1]["seconds"]
