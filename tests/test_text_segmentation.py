"""Sentences, the split rule for over-long ones, and the opt-in cuts: offsets always kept."""

from __future__ import annotations

import pytest

from blocks.components.text import Span, clauses, clean, complete_sentences, halves, sentences, utterances

NO_COMMAS = (
    "The committee reviewed every proposal that the regional offices had submitted during the previous "
    "fiscal year and then selected the three projects that promised the greatest benefit to the "
    "communities they served."
)


def texts(spans: list[Span]) -> list[str]:
    return [s.text for s in spans]


def whole(text: str) -> Span:
    return Span(0, len(text), text)


def test_sentences_keep_offsets():
    text = "First one. Second, with a clause! Third?\nFourth line"
    spans = sentences(text)
    assert texts(spans) == ["First one.", "Second, with a clause!", "Third?", "Fourth line"]
    assert all(text[s.start : s.end] == s.text for s in spans)


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith paid $42.50 at 9:30 in the U.S. office today.",
        "J. R. R. Tolkien wrote The Hobbit.",
        "Mr. and Mrs. Jones met Prof. Lee at St. Paul's.",
        "Bring something warm, e.g. A sweater, i.e. Wool.",
        "Pi is 3.14 and e is 2.718 roughly.",
        "See Fig. 4 and entry No. 7 on p. 12 for Sept. 3 data.",
        "The game was Boston vs. Chicago at 7 p.m. on Friday.",
        "The U.S. Army and the U.K. Navy trained together.",
        "Martin Luther King Jr. was born in Atlanta.",
        "They sold apples, pears, etc. and some plums.",
        '"Are you coming?" she asked.',
        "He hesitated... then he jumped.",
        "Version 2.0 costs $1,250.99 per seat.",
    ],
)
def test_abbreviations_numbers_and_initials_never_end_a_sentence(text):
    assert texts(sentences(text)) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I moved to the U.S. The weather is better.", ["I moved to the U.S.", "The weather is better."]),
        ("We met at 3 p.m. It rained.", ["We met at 3 p.m.", "It rained."]),
        ("Buy apples, pears, etc. Then go home.", ["Buy apples, pears, etc.", "Then go home."]),
        ("He scored 3.5. Then he left.", ["He scored 3.5.", "Then he left."]),
        ('"Yes." She nodded.', ['"Yes."', "She nodded."]),
        ("Wait... Did you hear that?", ["Wait...", "Did you hear that?"]),
        ("Really?! No way.", ["Really?!", "No way."]),
        ("One line\nwraps here.\n\nNew paragraph", ["One line\nwraps here.", "New paragraph"]),
        ("Heading\n\nBody text.", ["Heading", "Body text."]),
    ],
)
def test_what_follows_confirms_a_sentence_end(text, expected):
    assert texts(sentences(text)) == expected


def test_growing_text_gives_only_confirmed_sentences():
    text = "Dr. Smith paid. Then he left. And"
    seen: list[str] = []
    for end in range(1, len(text) + 1):
        done, rest = complete_sentences(text[:end])
        assert texts(done)[: len(seen)] == seen  # a confirmed sentence is never taken back
        seen = texts(done)
        assert rest <= end and all(s.end <= rest for s in done)
    assert complete_sentences("Dr. Smith paid.")[0] == []  # only what follows confirms an end
    assert complete_sentences("I live in the U.S. Th")[0] == []  # "Th" may grow into "The", or not
    assert texts(complete_sentences("I live in the U.S. The ")[0]) == ["I live in the U.S."]
    assert complete_sentences("I live in the U.S. Army ")[0] == []
    assert texts(complete_sentences("Hello there. The")[0]) == ["Hello there."]  # a capital confirms it
    assert complete_sentences("I met Dr. Smi")[0] == []
    assert texts(complete_sentences("Heading\n\n")[0]) == ["Heading"]  # a blank line confirms at once
    done, rest = complete_sentences("Dr. Smith paid. Then he left. And")
    assert texts(done) == ["Dr. Smith paid.", "Then he left."] and rest == len("Dr. Smith paid. Then he left.")
    assert texts(sentences(text)) == [*texts(done), "And"]


def test_a_whole_sentence_is_one_utterance_by_default():
    long = " ".join([NO_COMMAS] * 3)
    assert texts(utterances(long)) == [NO_COMMAS] * 3
    assert len(NO_COMMAS) > 200


def test_halves_cut_at_the_clause_nearest_the_middle():
    text = ("When the long train finally arrived at the crowded station the travelers gathered their bags, "
            "and they walked slowly into the bright sunlight, hoping for rest.")
    first, second = halves(Span(100, 100 + len(text), text))
    assert first.text.endswith("their bags,") and second.text.startswith("and they walked")
    assert (first.start, second.end) == (100, 100 + len(text))
    assert text[first.start - 100 : first.end - 100] == first.text
    assert text[second.start - 100 : second.end - 100] == second.text


def test_halves_cut_at_the_word_nearest_the_middle_without_a_clause():
    first, second = halves(whole(NO_COMMAS))
    assert f"{first.text} {second.text}" == NO_COMMAS
    middle = len(NO_COMMAS) / 2
    gaps = [i for i, c in enumerate(NO_COMMAS) if c == " "]
    assert abs(first.end - middle) <= min(abs(g - middle) for g in gaps) + 1


def test_halves_never_cut_inside_a_number_or_after_an_abbreviation():
    text = "Dr. Smith paid $1,250.50 to Mrs. Jones"
    for piece in halves(whole(text)):
        assert piece.text.split()[0] not in ("Smith", "Jones")
        assert "1,250.50" in piece.text or "$" not in piece.text


def test_a_single_word_does_not_halve():
    assert halves(Span(5, 30, "Pneumonoultramicroscopic")) == [Span(5, 30, "Pneumonoultramicroscopic")]


def test_the_character_cap_halves_until_every_piece_fits():
    spans = utterances(NO_COMMAS, max_chars=80)
    assert all(s.end - s.start <= 80 for s in spans) and len(spans) == 4
    assert " ".join(texts(spans)) == NO_COMMAS


def test_the_latency_option_speaks_the_first_clauses_alone():
    text = ("When the train finally arrived at the crowded station, the travelers gathered their bags and "
            "walked into the sunlight, hoping for rest. Then silence.")
    spans = utterances(text, first_chars=60)
    assert texts(spans) == [
        "When the train finally arrived at the crowded station,",
        "the travelers gathered their bags and walked into the sunlight, hoping for rest.",
        "Then silence.",
    ]
    assert texts(utterances(text)) == texts(sentences(text))


def test_clauses_and_clean_keep_offsets():
    assert texts(clauses("Pi is 3.14, roughly.")) == ["Pi is 3.14,", "roughly."]
    text = "a\x00b\u200bc\nd"
    cleaned = clean(text)
    assert len(cleaned) == len(text) and cleaned == "a b c\nd"
