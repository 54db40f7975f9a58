"""OpenAI's names resolved in one place: aliases beside the addons' own names, refusals naming what exists, and
a table naming what is not served refused when the ingress takes it."""

from __future__ import annotations

import pytest

from blocks.errors import InputError
from deployments.errors import UnknownModel
from deployments.openai_names import Names
from deployments.served_addons import AddonHandles, ServedAddons
from deployments.settings import OPENAI_MODELS, OPENAI_VOICES, IngressConfig, OpenAINames


@pytest.fixture(scope="module")
def addons() -> ServedAddons:
    handles = AddonHandles(encoders={"Encoders": None}, tail=None, stages={}, default="Encoders",  # type: ignore
                           overrides=None)
    return ServedAddons({"piper-joe": handles, "hibari": handles})


def test_defaults_map_every_openai_name_to_the_first_addon_and_its_first_voice(addons: ServedAddons) -> None:
    names = Names(addons, IngressConfig().openai)
    assert sorted(names.models) == sorted(OPENAI_MODELS) and sorted(names.voices) == sorted(OPENAI_VOICES)
    assert all(names.model(m).name == "piper-joe" for m in OPENAI_MODELS)
    assert all(names.voice(names.model("tts-1"), v).name == "default" for v in OPENAI_VOICES)
    assert names.model("hibari").name == "hibari" and names.voice(names.model("hibari"), None).name == "default"


def test_a_table_maps_to_other_addons_and_voices(addons: ServedAddons) -> None:
    names = Names(addons, OpenAINames(models={"tts-1": "hibari"}, voices={"alloy": "default"}))
    assert names.model("tts-1").name == "hibari" and names.voice(names.model("tts-1"), "alloy").name == "default"
    with pytest.raises(UnknownModel, match=r"'tts-1-hd'.*\['hibari', 'piper-joe'\].*\['tts-1'\]"):
        names.model("tts-1-hd")  # a table given replaces the default one
    with pytest.raises(InputError, match=r"'echo'.*\['default'\].*\['alloy'\]") as refused:
        names.voice(names.model("hibari"), "echo")
    assert refused.value.param == "voice"


@pytest.mark.parametrize(("table", "param"), [
    (OpenAINames(models={"tts-1": "nope"}), "openai.models"),
    (OpenAINames(voices={"alloy": "nobody"}), "openai.voices"),
])
def test_a_table_naming_what_is_not_served_is_refused(addons: ServedAddons, table: OpenAINames, param: str) -> None:
    with pytest.raises(InputError, match=r"nope|nobody") as refused:
        Names(addons, table)
    assert refused.value.param == param
