"""The streaming encoders: every OpenAI format decodes to the input's duration, streams from the first chunk
and frees everything on close, also when a response is cancelled mid-chunk; the resampler's chunked output
equals its one-shot output."""

from __future__ import annotations

import asyncio
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from blocks.audio_formats import (
    FORMATS,
    MEDIA_TYPES,
    PCM_RATE,
    AvEncoder,
    encode_rate,
    encoder_for,
    ffmpeg_single_thread,
    format_of,
    pcm16,
)
from blocks.resample import StreamResampler, resample
from tests.audio_checks import (
    FRAME,
    LEAD,
    OPENAI_FORMATS,
    SYNC,
    decode,
    encode,
    lag,
    resources,
    service_chunks,
    snr_db,
    speech_like,
)

RATES = (16000, 22050, 24000)


@pytest.fixture(scope="module", params=RATES)
def signal(request: pytest.FixtureRequest) -> tuple[int, np.ndarray]:
    return request.param, speech_like(request.param, 3.0)


def test_every_openai_format_is_served() -> None:
    assert list(FORMATS) == list(OPENAI_FORMATS)
    assert MEDIA_TYPES["mp3"] == "audio/mpeg" and MEDIA_TYPES["aac"] == "audio/aac"


@pytest.mark.parametrize("rate", RATES)
def test_encode_rates(rate: int) -> None:
    assert encode_rate(FORMATS["pcm"], rate) == PCM_RATE
    assert encode_rate(FORMATS["opus"], rate) == (16000 if rate == 16000 else 24000)
    for name in ("mp3", "aac", "flac", "wav"):
        assert encode_rate(FORMATS[name], rate) == rate
    assert encode_rate(FORMATS["mp3"], 44000) == 44100 and encode_rate(FORMATS["opus"], 44100) == 48000


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_decoded_duration_matches_input(name: str, signal: tuple[int, np.ndarray]) -> None:
    """Decoded by FFmpeg, the audio starts ``LEAD`` samples late (mp3, aac: the stream cannot say) or on time
    (Ogg pre-skip and end trimming), and ends within one codec frame of the input's end."""
    rate, audio = signal
    pieces, encoded_rate = encode(name, audio, rate)
    decoded, out_rate = decode(b"".join(pieces), name)
    reference = audio if out_rate == rate else soxr.resample(audio, rate, out_rate, "VHQ").astype(np.float32)
    assert lag(decoded, reference) == LEAD.get(name, 0)
    extra = decoded.shape[0] - LEAD.get(name, 0) - reference.shape[0]
    if name in FRAME:
        assert 0 <= extra < FRAME[name] * out_rate // encoded_rate
    else:
        assert abs(extra) <= 1  # rounding of the rate conversion
    if name == "pcm":
        assert out_rate == PCM_RATE and len(b"".join(pieces)) == 2 * round(audio.shape[0] * PCM_RATE / rate)


@pytest.mark.parametrize("name", ["flac", "wav", "pcm"])
def test_lossless_formats_carry_the_same_integers(name: str, signal: tuple[int, np.ndarray]) -> None:
    rate, audio = signal
    data = b"".join(encode(name, audio, rate)[0])
    expected = audio if name != "pcm" else resample(audio, rate, PCM_RATE)
    if name == "flac":
        decoded, _ = decode(data, name)
        assert np.array_equal(np.rint(decoded * 32768).astype("<i2").tobytes(), pcm16(expected))
    else:
        assert data[44 if name == "wav" else 0:] == pcm16(expected)


def test_wav_header_says_unknown_length_and_plays() -> None:
    audio = speech_like(22050, 1.0)
    data = b"".join(encode("wav", audio, 22050)[0])
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert soundfile.read(io.BytesIO(data), dtype="int16")[0].shape[0] == audio.shape[0]
    assert decode(data, "wav")[0].shape[0] == audio.shape[0]


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_first_chunk_already_yields_playable_audio(name: str) -> None:
    first = next(service_chunks(speech_like(22050, 1.0)))  # 4096 samples, 0.19 s
    with encoder_for(name, 22050) as encoder:
        out = encoder.encode(first)
    decoded, rate = decode(out, name)
    assert (decoded.shape[0] - LEAD.get(name, 0)) / rate > 0.05


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_chunks_start_on_frame_or_page_boundaries(name: str) -> None:
    """What SSE needs: every chunk is whole frames or pages, base64-encoded on its own."""
    pieces = [piece for piece in encode(name, speech_like(22050, 3.0), 22050)[0] if piece]
    assert len(pieces) > 3 and all(SYNC[name](piece) for piece in pieces[1:])
    assert pieces[0][:4] in {b"RIFF", b"OggS", b"fLaC"} or SYNC[name](pieces[0])


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_close_mid_stream_frees_threads_and_ffmpeg_objects(name: str) -> None:
    chunk = speech_like(22050, 0.19)
    before = resources()
    encoders = [encoder_for(name, 22050) for _ in range(4)]
    for encoder in encoders:
        encoder.encode(chunk)
    for encoder in encoders:
        encoder.close()
        encoder.close()  # twice is harmless
    del encoders, encoder
    assert resources() == before


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_finished_encoder_refuses_more_audio(name: str) -> None:
    with encoder_for(name, 22050) as encoder:
        encoder.encode(speech_like(22050, 0.1))
        assert isinstance(encoder.finish(), bytes)
        assert encoder.finish() == b""
        with pytest.raises(ValueError):
            encoder.encode(speech_like(22050, 0.1))


@pytest.mark.parametrize(("source", "target"), [(22050, 24000), (16000, 24000), (24000, 48000)])
@pytest.mark.parametrize("size", [97, 1001, 4096, 4097, 20480, 40960])
def test_chunked_resampling_equals_whole(source: int, target: int, size: int) -> None:
    audio = speech_like(source, 3.0)
    whole = resample(audio, source, target)
    resampler = StreamResampler(source, target)
    parts = [resampler(audio[start:start + size]) for start in range(0, audio.shape[0], size)]
    chunked = np.concatenate([*parts, resampler.flush()])
    assert chunked.shape[0] == whole.shape[0] == round(audio.shape[0] * target / source)
    assert snr_db(whole, chunked) >= 60
    assert np.max(np.abs(chunked - whole)) < 1e-4  # no click at the joins


def test_format_from_a_file_name() -> None:
    assert [format_of(Path(f"out.{e}")) for e in ("mp3", "OPUS", "ogg", "aac", "flac", "wav", "pcm", "raw")] == [
        "mp3", "opus", "opus", "aac", "flac", "wav", "pcm", "pcm"]
    with pytest.raises(ValueError, match=r"\.mp3.*\.flac"):
        format_of(Path("out.m4a"))


def test_a_response_cancelled_mid_chunk_closes_its_encoder_once_the_chunk_is_done() -> None:
    """The ingress's encoder runs FFmpeg in a shared pool: a client gone while a chunk is encoding closes the
    encoder when that chunk returns, from the pool's thread, never while it runs; no thread is left per
    response."""
    from deployments.audio import StreamEncoder

    chunk = speech_like(22050, 3.0)

    async def cancelled(encoder: StreamEncoder) -> None:
        task = asyncio.ensure_future(encoder.encode(chunk))
        await asyncio.sleep(0.001)  # the chunk is in the pool
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        encoder.close()

    async def run() -> list[StreamEncoder]:
        encoders = [StreamEncoder(name, 22050) for name in ("aac", "mp3", "opus") for _ in range(3)]
        await asyncio.gather(*(cancelled(encoder) for encoder in encoders))
        for _ in range(500):
            if all(isinstance(e.encoder, AvEncoder) and e.encoder.closed for e in encoders):
                break
            await asyncio.sleep(0.01)
        return encoders

    asyncio.run(run())  # the pool's threads start here, once
    before = resources()
    encoders = asyncio.run(run())
    assert all(isinstance(e.encoder, AvEncoder) and e.encoder.closed for e in encoders)
    del encoders
    assert resources() == before  # the pool's threads (at most ENCODING_THREADS) were there before


def test_single_thread_ffmpeg_starts_no_threads_per_encoder() -> None:
    """Process-wide: with it, an open encoder's filter graph starts no slice threads."""
    assert ffmpeg_single_thread()
    before = resources()["native_threads"]
    with encoder_for("aac", 22050) as encoder:
        encoder.encode(speech_like(22050, 0.19))
        assert resources()["native_threads"] == before
