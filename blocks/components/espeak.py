"""Thin ctypes binding to the espeak-ng library shipped by the espeakng-loader package."""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

from blocks.errors import EspeakError

_IPA = 0x02  # espeak_TextToPhonemes phonememode: IPA as UTF-8
_UTF8 = 1  # espeakCHARS_UTF8
_SYNCHRONOUS = 0x02  # AUDIO_OUTPUT_SYNCHRONOUS: no audio device is opened
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    try:
        import espeakng_loader
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise EspeakError("espeakng-loader is not installed") from error
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_int,
        ctypes.c_int,
    ]
    data = espeakng_loader.get_data_path().encode()
    if lib.espeak_Initialize(_SYNCHRONOUS, 0, data, 0) < 0:
        raise EspeakError("espeak-ng failed to initialise")
    return lib


class Espeak:
    """Text to IPA phonemes for one espeak-ng voice (e.g. ``en-us``)."""

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self._lib = _library()
        with _lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice named {voice!r}")

    def phonemes(self, text: str) -> str:
        """IPA for ``text``: words separated by spaces, espeak's own clauses joined by spaces."""
        encoded = ctypes.create_string_buffer(text.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(encoded))
        parts: list[str] = []
        with _lock:
            self._lib.espeak_SetVoiceByName(self.voice.encode())
            while pointer.value:
                result = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _UTF8, _IPA)
                if result:
                    parts.append(result.decode("utf-8", errors="ignore"))
        return " ".join(part.strip() for part in parts if part.strip())
