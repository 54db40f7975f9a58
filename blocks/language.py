"""Language tags: one place that says which language a tag names and whether English rules apply.

Tags come as BCP 47 (``en-US``), POSIX (``en_US``) or espeak-ng voice names (``en-us``, ``fr``, ``cmn``);
two tags name the same language when their primary subtags agree (``en-GB`` text suits an ``en-us`` voice).
"""

from __future__ import annotations


def primary(tag: str) -> str:
    """The primary language subtag, lower case: ``en-US`` → ``en``, ``pt_BR`` → ``pt``."""
    return tag.replace("_", "-").split("-", 1)[0].strip().lower()


def same_language(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one language (regions and scripts aside)."""
    return primary(a) == primary(b)


def is_english(tag: str) -> bool:
    """True for English tags: English sentence rules and English say-as words apply."""
    return primary(tag) == "en"
