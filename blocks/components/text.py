"""Text clean-up, sentence segmentation and the split rule for over-long sentences; offsets kept.

A sentence ends at ``. ! ? …`` (closing quotes or brackets may follow) before whitespace, or at a
blank line, and only when what follows confirms it: a lowercase word never starts a sentence; a
period after a title or a Latin abbreviation ("Dr.", "e.g.") never ends one; after an initial, a
dotted acronym or an ambiguous abbreviation ("J.", "U.S.", "etc.") it ends one only when a word that
usually starts sentences follows ("The", "We", ...); "No. 7" keeps its number.
Decimals, prices, times and thousands ("3.14", "$42.50", "9:30", "1,000") have no space after their
point, so they never end one. A single line break is a space, as it is to espeak-ng.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise

CLOSERS = "\"')]}’”»"
# A run of terminators, closing quotes or brackets, then whitespace (or the end of the text).
_TERMINAL = re.compile(rf"(?<![.!?…])([.!?…]+)([{re.escape(CLOSERS)}]*)(?=\s|$)")
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_WORD = re.compile(r"\w[\w'’-]*")
_NEXT_TOKEN = re.compile(r"\s*[\"'(\[{‘“«]*(\S?)([^\s.,;:!?…\"')\]}’”»]*)(.?)", re.DOTALL)
_TOKEN_BEFORE = re.compile(r"(\S+)$")
# Where a too-long sentence may be cut: after clause punctuation, or around a spaced dash.
_CLAUSE = re.compile(rf"[,;:!?…]+[{re.escape(CLOSERS)}]*(?=\s)|\.[{re.escape(CLOSERS)}]*(?=\s)|\s[-–—]+(?=\s)")

TITLES = frozenset(
    "mr mrs ms mx dr prof st mt ft gen gov sen rep capt lt col sgt cpl maj adm cmdr rev hon pres supt "
    "messrs mme mlle fr".split()
)
"""Words whose period never ends a sentence when a capitalised word follows (a name follows them)."""
LATIN = frozenset("e.g i.e cf vs viz approx ca".split())
"""Abbreviations that never end a sentence before a capitalised word."""
BEFORE_NUMBERS = frozenset(
    "no nos vol vols fig figs p pp ch chap sec art eq ed jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
"""Abbreviations that never end a sentence before a number ("No. 5", "Fig. 3", "Sept. 12")."""
AMBIGUOUS = frozenset("etc inc ltd co corp bros llc plc dept est al jr sr".split())
"""Abbreviations that end a sentence only before a word that usually starts one."""
STARTERS = frozenset(
    "the a an this that these those there then he she it we they i you his her its our their my your "
    "but and so yet or nor if when while after before as at in on by for from with without to of what "
    "who why how where which however meanwhile today tomorrow yesterday now still also later instead "
    "please thanks yes no not one some many most all each every both few".split()
)
"""Words that usually start sentences: after an ambiguous period they confirm a sentence end."""


@dataclass(frozen=True)
class Span:
    """A piece of the input text: ``text[start:end]`` of the original string."""

    start: int
    end: int
    text: str


def clean(text: str) -> str:
    """Replace control and format characters with spaces, keeping every offset."""
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n" else c for c in text
    )


def sentences(text: str) -> list[Span]:
    """The sentences of a whole text (its end confirms the last one), trimmed, offsets kept."""
    return _sentences(text, final=True)[0]


def complete_sentences(text: str) -> tuple[list[Span], int]:
    """For text that may still grow: the leading sentences that what follows them confirms, and the
    offset where the unconfirmed rest starts. ``sentences(text)`` is what ``complete_sentences``
    returns once the text is final, plus the rest as the last sentence."""
    return _sentences(text, final=False)


def utterances(text: str, max_chars: int | None = None, first_chars: int | None = None) -> list[Span]:
    """Sentences, each one utterance, except that

    - ``max_chars``, if given, halves (see ``halves``) any sentence longer than that;
    - ``first_chars``, if given, speaks the first sentence's leading clauses (at most ``first_chars``
      characters, at least one clause) on their own: a latency option, since first audio waits for the
      encoder to run over the whole first utterance; it changes the prosody at that seam.
    """
    result: list[Span] = []
    for sentence in sentences(text):
        result += sentence_utterances(sentence, max_chars, first_chars if not result else None)
    return result


def sentence_utterances(sentence: Span, max_chars: int | None = None, first_chars: int | None = None) -> list[Span]:
    """The utterances of one sentence, as ``utterances`` cuts them (``first_chars``: only for a text's first)."""
    pieces = _first_clauses(sentence, first_chars) if first_chars else [sentence]
    return [p for piece in pieces for p in (_capped(piece, max_chars) if max_chars else [piece])]


def last_clause_break(span: Span) -> int | None:
    """Offset in ``span.text`` just after its last inner clause boundary (a period after an abbreviation
    or an initial is none), or None: where a long run with no sentence end yet may be cut."""
    cuts = _clause_cuts(span)
    return max(cuts) if cuts else None


def halves(span: Span) -> list[Span]:
    """``span`` cut in two at the clause boundary nearest its middle, else at the word boundary nearest
    its middle; ``[span]`` when it is a single word. Offsets stay those of ``span``'s text."""
    middle = (span.end - span.start) / 2
    for cuts in (_clause_cuts(span), _word_cuts(span)):
        if cuts:
            cut = min(cuts, key=lambda at: (abs(at - middle), at))
            return [_trim(_sub(span, 0, cut)), _trim(_sub(span, cut, len(span.text)))]
    return [span]


def clauses(text: str) -> list[Span]:
    """Clauses with their trailing punctuation, trimmed; whitespace-only pieces are dropped."""
    cuts = [m.end() for m in _CLAUSE.finditer(text)]
    bounds = [0, *cuts, len(text)]
    whole = Span(0, len(text), text)
    return [_trim(_sub(whole, a, b)) for a, b in pairwise(bounds) if text[a:b].strip()]


def words(span: Span) -> list[Span]:
    """Word tokens of a span, with offsets into the original text."""
    return [Span(span.start + m.start(), span.start + m.end(), m.group()) for m in _WORD.finditer(span.text)]


def _sentences(text: str, final: bool) -> tuple[list[Span], int]:
    ends: list[int] = []
    # by position; at one position a blank line first: it ends the sentence whatever follows
    marks = sorted([(m.end(), 1, m) for m in _TERMINAL.finditer(text)] +
                   [(m.start(), 0, m) for m in _PARAGRAPH.finditer(text)], key=lambda item: item[:2])
    for end, _, match in marks:
        if match.re is _PARAGRAPH:
            ends.append(end)
            continue
        decision = _ends_sentence(text, match, final)
        if decision is None:
            break
        if decision:
            ends.append(end)
    ends = sorted(set(ends))
    bounds = [0, *ends, len(text)] if final else [0, *ends]
    spans = [_trim(Span(a, b, text[a:b])) for a, b in pairwise(bounds) if text[a:b].strip()]
    return spans, (len(text) if final else bounds[-1])


def _ends_sentence(text: str, match: re.Match[str], final: bool) -> bool | None:
    """Whether the terminator ``match`` ends a sentence; None when text still to come must tell."""
    after = _NEXT_TOKEN.match(text, match.end())
    first, rest, beyond = (after.group(1), after.group(2), after.group(3)) if after else ("", "", "")
    if not first:
        return True if final else None  # only whitespace follows: the end of the text decides
    if first.islower():
        return False
    if match.group(1) != ".":
        return True
    before = _token_before(text, match.start()).lstrip("\"'([{‘“«")
    if before in TITLES or before in LATIN:
        return False
    if first.isdigit():
        return before not in BEFORE_NUMBERS
    if _is_initial(before) or before in AMBIGUOUS:
        if not final and not beyond:
            return None  # the next word may still grow
        return (first + rest).lower() in STARTERS
    return True


def _is_initial(word: str) -> bool:
    """A single letter ("J") or a dotted acronym ("U.S", "p.m", "Ph.D")."""
    parts = word.split(".")
    return all(p.isalpha() and len(p) <= 2 for p in parts) and (len(parts) > 1 or len(word) == 1)


def _first_clauses(sentence: Span, first_chars: int) -> list[Span]:
    cuts = [c for c in _clause_cuts(sentence) if c <= first_chars]
    if not cuts:
        return [sentence]
    cut = max(cuts)
    return [_trim(_sub(sentence, 0, cut)), _trim(_sub(sentence, cut, len(sentence.text)))]


def _capped(span: Span, max_chars: int) -> list[Span]:
    if span.end - span.start <= max_chars:
        return [span]
    pieces = halves(span)
    if len(pieces) < 2:
        return pieces
    return [p for piece in pieces for p in _capped(piece, max_chars)]


def _clause_cuts(span: Span) -> list[int]:
    """Offsets in ``span.text`` just after each inner clause boundary (a word on both sides); a period
    after an abbreviation or an initial is no boundary."""
    text = span.text
    return [m.end() for m in _CLAUSE.finditer(text)
            if _WORD.search(text, 0, m.start()) and _WORD.search(text, m.end())
            and not (text[m.start()] == "." and _abbreviation(_token_before(text, m.start())))]


def _abbreviation(word: str) -> bool:
    word = word.lstrip("\"'([{‘“«")
    return _is_initial(word) or any(word in group for group in (TITLES, LATIN, BEFORE_NUMBERS, AMBIGUOUS))


def _token_before(text: str, at: int) -> str:
    word = _TOKEN_BEFORE.search(text[max(0, at - 64) : at])
    return (word.group(1) if word else "").lower()


def _word_cuts(span: Span) -> list[int]:
    """Offsets in ``span.text`` where each whitespace-separated token but the first starts."""
    return [m.start() for m in re.finditer(r"(?<=\s)\S", span.text) if _WORD.search(span.text, 0, m.start())]


def _sub(span: Span, a: int, b: int) -> Span:
    return Span(span.start + a, span.start + b, span.text[a:b])


def _trim(span: Span) -> Span:
    lead = len(span.text) - len(span.text.lstrip())
    body = span.text.strip()
    return Span(span.start + lead, span.start + lead + len(body), body)
