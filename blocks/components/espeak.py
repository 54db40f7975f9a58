"""ctypes binding to the espeak-ng that piper-tts ships (library and data): the one piper voices speak with.

The piper-tts wheel links espeak-ng 1.52.0.1 (the fork piper-tts itself runs) into its
``espeakbridge`` module and ships that revision's data beside it. Binding to that library, not to
another espeak-ng build, gives the voice the very phonemes its own runtime gives it: the revisions
differ (e.g. the fork writes the ``ʲ`` glide of "pˌiːʲˈɛm" that 1.52.0 drops), and only the fork
reports what ended each clause.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from blocks.errors import EspeakError

_IPA = 0x02  # phonememode: IPA as UTF-8
_AUTO = 0  # espeakCHARS_AUTO: UTF-8, as piper-tts passes its text
_SYNCHRONOUS = 0x02  # AUDIO_OUTPUT_SYNCHRONOUS: no audio device is opened
_SENTENCE = 0x00080000  # CLAUSE_TYPE_SENTENCE
# Clause terminator codes (pause | intonation | type) and the punctuation piper-tts writes for each.
_TERMINATORS = {
    40 | 0x0000 | _SENTENCE: ".",
    40 | 0x2000 | _SENTENCE: "?",
    45 | 0x3000 | _SENTENCE: "!",
    20 | 0x1000 | 0x00040000: ",",
    30 | 0x0000 | 0x00040000: ":",
    30 | 0x1000 | 0x00040000: ";",
}
_lock = threading.Lock()


@dataclass(frozen=True)
class Clause:
    """One clause as espeak-ng reads it."""

    phonemes: str
    """IPA, words separated by spaces (language-switch flags included)."""
    terminator: str
    """The punctuation that ended it, as piper-tts writes it: ``. ? ! , : ;`` or empty."""
    sentence_end: bool
    """espeak-ng ends a sentence here."""
    end: int
    """Character offset in the text where the next clause starts (the text's length for the last)."""


def _piper_folder() -> Path:
    spec = importlib.util.find_spec("piper")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise EspeakError("piper-tts is not installed; it ships the espeak-ng this frontend uses")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    folder = _piper_folder()
    found = sorted(folder.glob("espeakbridge*.so")) + sorted(folder.glob("espeakbridge*.pyd"))
    data = folder / "espeak-ng-data"
    if not found or not data.is_dir():
        raise EspeakError(f"piper-tts at {folder} has no espeakbridge library or espeak-ng-data folder")
    lib = ctypes.CDLL(str(found[0]))
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_TextToPhonemesWithTerminator.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemesWithTerminator.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    if lib.espeak_Initialize(_SYNCHRONOUS, 0, str(data).encode(), 0) < 0:
        raise EspeakError(f"espeak-ng failed to initialise with the data in {data}")
    return lib


class Espeak:
    """Text to IPA phonemes, clause by clause, for one espeak-ng voice (e.g. ``en-us``)."""

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self._lib = _library()
        with _lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice named {voice!r}")

    def clauses(self, text: str) -> list[Clause]:
        """espeak-ng's clauses of ``text``, each with its phonemes, terminator and end offset."""
        encoded = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(encoded)
        base = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(base)
        terminator = ctypes.c_int(0)
        found: list[Clause] = []
        with _lock:
            self._lib.espeak_SetVoiceByName(self.voice.encode())
            while pointer.value:
                result = self._lib.espeak_TextToPhonemesWithTerminator(
                    ctypes.byref(pointer), _AUTO, _IPA, ctypes.byref(terminator)
                )
                consumed = len(encoded) if not pointer.value else pointer.value - base
                read = encoded[:consumed].decode("utf-8", errors="ignore")
                code = terminator.value & 0x000FFFFF
                found.append(Clause(
                    phonemes=(result or b"").decode("utf-8", errors="ignore"),
                    terminator=_TERMINATORS.get(code, ""),
                    sentence_end=bool(code & _SENTENCE),
                    # espeak-ng stops after the next clause's first character: that character is not this one's
                    end=len(read) - 1 if pointer.value and read and not read[-1].isspace() else len(read),
                ))
        return found

    def phonemes(self, text: str) -> str:
        """IPA for ``text``: words separated by spaces, espeak's own clauses joined by spaces."""
        return " ".join(c.phonemes.strip() for c in self.clauses(text) if c.phonemes.strip())


def loadable_voice(voice: str) -> str:
    """A name espeak-ng loads for ``voice``: itself, else the voice file that declares it as its language
    (``fr-fr`` is the language of the file ``fr``, ``en-gb`` of ``en``); an EspeakError when none does."""
    lib = _library()
    with _lock:
        if lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return voice
    wanted = voice.lower().replace("_", "-")
    for path in sorted((_piper_folder() / "espeak-ng-data" / "lang").rglob("*")):
        if not path.is_file():
            continue
        codes = [line.split()[1].lower() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.startswith("language ") and len(line.split()) > 1]
        if wanted in codes:
            with _lock:
                if lib.espeak_SetVoiceByName(path.name.encode()) == 0:
                    return path.name
    raise EspeakError(f"espeak-ng (the build piper-tts ships) has no voice {voice!r}")
