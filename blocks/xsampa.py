"""X-SAMPA to IPA, for ``<phoneme alphabet="x-sampa">`` (the symbols English voices use, and a few more)."""

from __future__ import annotations

from blocks.errors import InputError

_TABLE = {
    # vowels
    "{": "æ", "6": "ɐ", "@": "ə", "@`": "ɚ", "3": "ɜ", "3`": "ɝ", "A": "ɑ", "E": "ɛ", "I": "ɪ", "O": "ɔ",
    "Q": "ɒ", "U": "ʊ", "V": "ʌ", "Y": "ʏ", "2": "ø", "9": "œ", "1": "ɨ", "}": "ʉ", "M": "ɯ", "7": "ɤ",
    "8": "ɵ", "&": "ɶ", "a": "a", "e": "e", "i": "i", "o": "o", "u": "u", "y": "y",
    # consonants
    "T": "θ", "D": "ð", "S": "ʃ", "Z": "ʒ", "N": "ŋ", "J": "ɲ", "r\\": "ɹ", "r": "r", "4": "ɾ", "R": "ʁ",
    "?": "ʔ", "h\\": "ɦ", "x": "x", "X": "χ", "G": "ɣ", "B": "β", "F": "ɱ", "L": "ʎ", "5": "ɫ", "j": "j",
    "w": "w", "W": "ʍ", "H": "ɥ", "C": "ç", "g": "ɡ", "b": "b", "d": "d", "f": "f", "h": "h", "k": "k",
    "l": "l", "m": "m", "n": "n", "p": "p", "s": "s", "t": "t", "v": "v", "z": "z", "c": "c", "q": "q",
    "dZ": "dʒ", "tS": "tʃ", "P": "ʋ", "K": "ɬ",
    # suprasegmentals and diacritics
    '"': "ˈ", "%": "ˌ", ":": "ː", ":\\": "ˑ", ".": ".", "~": "\u0303", "_h": "ʰ", "'": "ʲ", "_j": "ʲ",
    "=": "\u0329", "`": "\u02de", " ": " ",
}
_LONGEST = max(map(len, _TABLE))


def to_ipa(xsampa: str) -> str:
    """The IPA of an X-SAMPA string (longest symbol first); an unknown symbol is an InputError."""
    out, at = [], 0
    while at < len(xsampa):
        for size in range(min(_LONGEST, len(xsampa) - at), 0, -1):
            if (ipa := _TABLE.get(xsampa[at : at + size])) is not None:
                out.append(ipa)
                at += size
                break
        else:
            raise InputError(f"x-sampa: unknown symbol {xsampa[at]!r} at position {at} of {xsampa!r}")
    return "".join(out)
