"""Splitting text into utterances keeps offsets and respects sentence and clause boundaries."""

from __future__ import annotations

from blocks.components.text import clauses, clean, utterances


def test_sentences_become_utterances_with_offsets():
    text = "First one. Second, with a clause! Third?\nFourth line"
    spans = utterances(text, 300)
    assert [s.text for s in spans] == ["First one.", "Second, with a clause!", "Third?", "Fourth line"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_decimals_and_abbreviations_inside_words_do_not_split():
    assert [c.text for c in clauses("Pi is 3.14, roughly.")] == ["Pi is 3.14,", "roughly."]


def test_long_sentences_split_at_clauses_then_words():
    text = "alpha beta gamma, delta epsilon zeta, eta theta iota kappa lambda mu nu xi omicron pi rho."
    spans = utterances(text, 30)
    assert all(s.end - s.start <= 30 for s in spans)
    assert " ".join(s.text for s in spans) == text
    assert spans[0].text == "alpha beta gamma,"


def test_clean_keeps_offsets():
    text = "a\x00b\u200bc\nd"
    cleaned = clean(text)
    assert len(cleaned) == len(text) and cleaned == "a b c\nd"


def test_a_long_first_sentence_speaks_its_first_clause_alone():
    text = "When the train finally arrived at the crowded station, the travelers gathered their bags and " \
           "walked into the sunlight, hoping for rest. Then silence."
    spans = utterances(text, 300, first_chars=60)
    assert spans[0].text == "When the train finally arrived at the crowded station,"
    assert spans[1].text.endswith("hoping for rest.") and spans[2].text == "Then silence."
    assert utterances(text, 300)[0].text.endswith("hoping for rest.")
