"""SSML ``say-as``: how digits, letters, dates, times and phone numbers are read.

Each interpretation turns the element's text into the words spoken in its place; a text the
interpretation cannot read is an :class:`~blocks.errors.InputError` saying which and why. English voices
get English words; a voice of another language gets digits and letters laid out for espeak-ng to say in
that language (ordinal, date and time are read in English only, and refused elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from blocks.errors import InputError
from blocks.language import is_english

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
        "sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_MONTHS = "January February March April May June July August September October November December".split()
LETTER_NAMES = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    "eigh bee see dee ee ef gee aitch eye jay kay el em en oh pee cue ar ess tee you vee double-u ex why zee"
).split(), strict=True))
"""Letter names spelled so that both English G2Ps (espeak-ng, hibari's) read them as the letter."""
MAX_NUMBER = 10**15 - 1


def cardinal(number: int) -> str:
    """``number`` in words: 1234 -> "one thousand two hundred thirty-four"."""
    if number < 0:
        return "minus " + cardinal(-number)
    if number > MAX_NUMBER:
        raise InputError(f"say-as: {number} is larger than {MAX_NUMBER}")
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError(number)


def ordinal(number: int) -> str:
    """``number`` as an ordinal: 21 -> "twenty-first"."""
    words = cardinal(number)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(number: int) -> str:
    """A year as said: 1999 -> "nineteen ninety-nine", 2005 -> "two thousand five", 2024 -> "twenty twenty-four"."""
    high, low = divmod(number, 100)
    if number < 1000 or not 10 <= high <= 99 or (high % 10 == 0 and low < 10):
        return cardinal(number)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} " + (f"oh {_ONES[low]}" if low < 10 else cardinal(low))


def _integer(text: str, what: str) -> int:
    digits = text.replace(",", "").strip()
    if not re.fullmatch(r"[+-]?\d{1,15}", digits):
        raise InputError(f"say-as {what}: {text!r} is not a whole number")
    return int(digits)


def read_cardinal(text: str) -> str:
    match = re.fullmatch(r"\s*([+-]?[\d,]+)(?:\.(\d+))?\s*", text)
    if not match:
        raise InputError(f"say-as cardinal: {text!r} is not a number")
    words = cardinal(_integer(match.group(1), "cardinal"))
    if match.group(2):
        words += " point " + read_digits(match.group(2))
    return words


def read_ordinal(text: str) -> str:
    return ordinal(_integer(re.sub(r"(?i)(st|nd|rd|th)\s*$", "", text.strip()), "ordinal"))


def read_digits(text: str) -> str:
    digits = re.sub(r"[\s,.-]", "", text)
    if not digits.isdigit() or not digits.isascii():
        raise InputError(f"say-as digits: {text!r} holds more than digits")
    return " ".join(_ONES[int(d)] for d in digits)


def read_characters(text: str) -> str:
    """Letters and digits one by one; other characters are left out."""
    names = [LETTER_NAMES.get(c.lower()) or (_ONES[int(c)] if c.isascii() and c.isdigit() else "") for c in text]
    spoken = " ".join(name for name in names if name)
    if not spoken:
        raise InputError(f"say-as characters: {text!r} holds no letter or digit")
    return spoken


def read_telephone(text: str) -> str:
    """Digit by digit, a comma between the number's groups: "(555) 123-4567"."""
    groups = re.findall(r"\d+", text)
    if not groups or re.search(r"[^\d\s()+.\-/]", text):
        raise InputError(f"say-as telephone: {text!r} is not a telephone number")
    spoken = ", ".join(read_digits(group) for group in groups)
    return ("plus " if text.strip().startswith("+") else "") + spoken


DATE_FORMATS = ("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y", "yyyymmdd")


def read_date(text: str, date_format: str | None) -> str:
    """A date of digits in ``format`` (default ``ymd`` when it starts with four digits, else ``mdy``)."""
    value = text.strip()
    if date_format == "yyyymmdd" or (date_format is None and re.fullmatch(r"\d{8}", value)):
        if not re.fullmatch(r"\d{8}", value):
            raise InputError(f"say-as date: {text!r} is not yyyymmdd")
        parts, date_format = [value[:4], value[4:6], value[6:]], "ymd"
    else:
        parts = [p for p in re.split(r"[-/.\s]+", value) if p]
    if date_format is None:
        date_format = "ymd" if parts and len(parts[0]) == 4 else "mdy"
    if date_format not in DATE_FORMATS:
        raise InputError(f"say-as date: format {date_format!r} is not one of {list(DATE_FORMATS)}")
    if len(parts) != len(date_format) or not all(p.isdigit() and p.isascii() for p in parts):
        raise InputError(f"say-as date: {text!r} does not match format {date_format!r}")
    fields = dict(zip(date_format, map(int, parts), strict=True))
    if not 1 <= fields.get("m", 1) <= 12 or not 1 <= fields.get("d", 1) <= 31:
        raise InputError(f"say-as date: {text!r} has no such month or day")
    said = []
    if "m" in fields:
        said.append(_MONTHS[fields["m"] - 1])
    if "d" in fields:
        said.append(ordinal(fields["d"]) if "m" in fields else f"the {ordinal(fields['d'])}")
    if "y" in fields:
        said.append(("," if "d" in fields else "") + " " + year(fields["y"]) if said else year(fields["y"]))
    return " ".join(said).replace(" ,", ",")


def read_time(text: str) -> str:
    """A clock time ("10:05", "7:30 pm") or a duration as Polly writes it (``1'21"``: minutes, seconds)."""
    value = text.strip()
    if match := re.fullmatch(r"(?:(\d+)')?\s*(?:(\d+)\")?", value):
        if not any(match.groups()):
            raise InputError(f"say-as time: {text!r} is empty")
        pieces = [f"{cardinal(int(n))} {unit}{'' if int(n) == 1 else 's'}"
                  for n, unit in zip(match.groups(), ("minute", "second"), strict=True) if n is not None]
        return " ".join(pieces)
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([ap])\.?\s*m\.?)?", value, re.IGNORECASE)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59 or int(match.group(3) or 0) > 59:
        raise InputError(f"say-as time: {text!r} is not a time (hh:mm, hh:mm:ss, optional am/pm, or 1'21\")")
    hours, minutes = int(match.group(1)), int(match.group(2))
    said = cardinal(hours)
    said += " o'clock" if minutes == 0 and not match.group(4) else \
        "" if minutes == 0 else f" oh {_ONES[minutes]}" if minutes < 10 else f" {cardinal(minutes)}"
    if match.group(3):
        said += f" and {cardinal(int(match.group(3)))} seconds"
    if match.group(4):
        said += " " + LETTER_NAMES[match.group(4).lower()] + " em"
    return said


READERS: dict[str, Callable[[str, str | None], str]] = {
    "characters": lambda text, _: read_characters(text),
    "spell-out": lambda text, _: read_characters(text),
    "cardinal": lambda text, _: read_cardinal(text),
    "number": lambda text, _: read_cardinal(text),
    "ordinal": lambda text, _: read_ordinal(text),
    "digits": lambda text, _: read_digits(text),
    "date": read_date,
    "time": lambda text, _: read_time(text),
    "telephone": lambda text, _: read_telephone(text),
}
"""``interpret-as`` value -> reader of (text, format)."""


def _spaced(characters: list[str], what: str, text: str) -> str:
    if not characters:
        raise InputError(f"say-as {what}: {text!r} holds no letter or digit")
    return " ".join(characters)


def _whole_number(text: str) -> str:
    match = re.fullmatch(r"\s*([+-]?[\d,]+)\s*", text)
    if not match:
        raise InputError(f"say-as cardinal: {text!r} is not a whole number (voices of languages other than "
                         f"English read whole numbers only)")
    return str(_integer(match.group(1), "cardinal"))


def _digits(text: str) -> str:
    read_digits(text)  # the same checks as in English
    return " ".join(re.sub(r"[\s,.-]", "", text))


def _telephone(text: str) -> str:
    read_telephone(text)  # the same checks as in English
    spoken = ", ".join(" ".join(group) for group in re.findall(r"\d+", text))
    return ("+ " if text.strip().startswith("+") else "") + spoken


ANY_LANGUAGE: dict[str, Callable[[str], str]] = {
    "characters": lambda text: _spaced([c for c in text if c.isalnum()], "characters", text),
    "spell-out": lambda text: _spaced([c for c in text if c.isalnum()], "spell-out", text),
    "cardinal": _whole_number,
    "number": _whole_number,
    "digits": lambda text: _digits(text),
    "telephone": _telephone,
}
"""The readings a voice of any language gives: digits and letters that espeak-ng says in the voice's language."""


def say_as(interpret_as: str, text: str, date_format: str | None = None, language: str = "en") -> str:
    """The words spoken for ``text`` read as ``interpret_as`` by a voice speaking ``language``."""
    reader = READERS.get(interpret_as)
    if reader is None:
        raise InputError(f"say-as: interpret-as {interpret_as!r} is not supported; use one of {sorted(READERS)}")
    if is_english(language):
        return reader(text, date_format)
    if interpret_as not in ANY_LANGUAGE:
        raise InputError(f"say-as: interpret-as {interpret_as!r} is read in English only, and this voice speaks "
                         f"{language!r}; use one of {sorted(ANY_LANGUAGE)}")
    return ANY_LANGUAGE[interpret_as](text)
