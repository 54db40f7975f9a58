"""Stage deployments: transports around the one engine (``blocks.engine``), nothing model-specific here.

An encoder stage runs an addon's encoder part (or an A/B variant of it) on one utterance; a stream stage
runs a group of stream parts, pulling chunks from the stage before it. What each block sees, how chunks
carry timing and tally, and how an engine warms up are the engine's; a stage only moves them over Ray.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from blocks.addon import Addon
from blocks.admission import Admission
from blocks.core import Chunk
from blocks.engine import Encoded, Engine
from blocks.errors import ServiceError
from blocks.frontends import build_frontend
from blocks.scheduler import Clock
from blocks.session import Job, probe_jobs
from deployments.autoscaling import METRIC as LOAD_METRIC
from deployments.settings import StageConfig
from deployments.steps import PullFromAsync, Steps, Stopped

log = logging.getLogger("ray.serve")
STAGE_CALLS = 64
"""A stage replica's calls at once when its config says nothing: every stream an ingress may admit (the serve
config check holds an explicit ``max_ongoing_requests`` to at least the ingress's ``max_streams``)."""


@dataclass(frozen=True)
class Pending:
    """An utterance's encoder output that may still be computing, passed by reference.

    Serve resolves only top-level call arguments before routing a call; one wrapped here
    travels as a Ray object reference, so a stream stage is reached while the encoder works.
    """

    ref: ray.ObjectRef

    async def encoded(self) -> Encoded:
        result: Encoded = await self.ref
        return result


def _probes(addon: Addon) -> list[Job]:
    """The utterances a stage holding the encoder part warms up on."""
    return probe_jobs(addon, build_frontend(addon.frontend_context(), addon.config.frontend))


def _counters() -> dict[str, int]:
    return {"streams": 0, "completed": 0, "cancelled": 0, "failed": 0, "active": 0}


class StageBase:
    """What every stage answers besides its work: readiness, placement, counters, encoding (a stage holding
    an encoder part); and its shutdown."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.steps = Steps()
        self.counters = _counters()
        self.encodings = self.counters
        """The counters encodings count into: an encoder stage's own, a separate set in a stream stage."""

    async def ready(self) -> bool:
        """True once constructed: every stage warms up before its replica goes live."""
        return True

    async def stats(self) -> dict[str, int | str]:
        """This replica's stream counters, the encodings it completed, its id and its node."""
        return {**self.counters, "encoded": self.encodings["completed"],
                "replica": serve.get_replica_context().replica_id.unique_id,
                "node_id": ray.get_runtime_context().get_node_id()}

    async def encode(self, job: Job, clock: Clock | None = None) -> Encoded:
        """The utterance after the encoder part. ``clock`` is the stream's playback clock: encodings run
        earliest deadline first, with this replica's other steps."""
        if self.engine.encoder is None:
            raise ServiceError("this stage holds no encoder part")
        self.encodings["streams"] += 1
        try:
            result = await self.steps.run(clock, functools.partial(self._encode, job))
        except asyncio.CancelledError:
            self.encodings["cancelled"] += 1
            raise
        except Exception as error:
            self.encodings["failed"] += 1
            log.warning("request %s: encoding failed: %s: %s", job.request_id, type(error).__name__, error)
            raise
        self.encodings["completed"] += 1
        return result

    def _encode(self, job: Job) -> Encoded:
        return self.engine.encode(job.tensors(), job.request())

    async def __del__(self) -> None:
        """Serve is stopping this replica: end its compute threads and its networks' threads."""
        await asyncio.to_thread(self.steps.close)  # off the loop: a step may be waiting on it
        self.engine.close()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=STAGE_CALLS)
class EncoderStage(StageBase):
    """The addon's encoder part (``variant``: a registered SequenceBlock instead) on one utterance."""

    def __init__(self, addon: str, variant: str | None = None, overrides: dict[str, Any] | None = None) -> None:
        loaded = Addon.open(addon, overrides=overrides)
        super().__init__(Engine(loaded, encoder=True, streams=(), variant=variant))
        self.engine.warm_up(_probes(loaded))


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=STAGE_CALLS)
class StreamStage(StageBase):
    """A group of stream parts chained, pulling chunks from the upstream stage (if any); with ``encoder``, the
    addon's encoder part as well (``colocate_encoder``)."""

    def __init__(self, addon: str, parts: tuple[int, ...], upstream: DeploymentHandle | None = None,
                 overrides: dict[str, Any] | None = None, encoder: bool = False) -> None:
        loaded = Addon.open(addon, overrides=overrides)
        super().__init__(Engine(loaded, encoder=encoder, streams=parts))
        self.encodings = _counters()
        self.engine.warm_up(_probes(loaded) if encoder else ())
        self.hop_length = loaded.config.hop_length
        self.sample_rate = loaded.config.sample_rate
        self.upstream = upstream.options(stream=True) if upstream is not None else None
        self.config = StageConfig()
        self.admission = Admission()
        """Holds the utterances this replica streams and measures what a second of their audio costs."""

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's custom autoscaling metric ``stream_load``: the machine share the utterances streaming here
        need over the margin (admission's own model; absent until measured). See deployments/autoscaling.py."""
        load = self.admission.load()
        return {} if load is None else {LOAD_METRIC: load}

    def _seconds(self, chunk: Chunk) -> float:
        """Audio seconds a chunk stands for: its samples, or its frames times the hop."""
        frames = chunk.length if chunk.data.ndim == 1 else chunk.length * self.hop_length
        return frames / self.sample_rate

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.config = StageConfig.model_validate(config or {})

    async def stream(self, encoded: Encoded | Pending, job: Job, clock: Clock | None = None) -> AsyncIterator[Chunk]:
        """This stage's chunks for one utterance; cancelling it cancels the upstream call.

        ``clock`` is the stream's playback clock as the ingress knew it when it called: the stage
        advances its copy by the audio it yields, so its compute steps run earliest deadline first.
        """
        clock = clock if clock is not None else Clock()
        stop = threading.Event()
        request = job.request(stop.is_set, clock)
        source = self.upstream.stream.remote(encoded, job, clock) if self.upstream is not None else None
        self.counters["streams"] += 1
        self.counters["active"] += 1
        ticket = self.admission.open()
        produced_s = 0.0
        completed = False
        sent = 0
        try:
            tensors = (await encoded.encoded() if isinstance(encoded, Pending) else encoded).tensors
            upstream = PullFromAsync(source, asyncio.get_running_loop(), stop) if source is not None else None
            chunks = self.engine.stream(tensors, request, upstream)
            async for chunk in self.steps.drive(chunks, stop, self.config.handoff_s, clock):
                if chunk.data.ndim == 1:  # audio samples: the client's buffer grows by their length
                    clock.advance(chunk.length / self.sample_rate)
                self._drill(sent, job)
                produced_s += self._seconds(chunk)
                yield chunk
                sent += 1
                if (pace := self.config.pace_ahead_s) is not None and (ahead := clock.slack() - pace) > 0:
                    await asyncio.sleep(ahead)
            self.counters["completed"] += 1
            completed = True
        except (asyncio.CancelledError, GeneratorExit, Stopped):
            self.counters["cancelled"] += 1
            raise
        except Exception as error:
            self.counters["failed"] += 1
            log.warning("request %s: stream stage failed: %s: %s", job.request_id, type(error).__name__, error)
            raise
        finally:
            stop.set()
            self.counters["active"] -= 1
            self.admission.release(ticket, produced_s, completed)
            if source is not None:
                source.cancel()

    def _drill(self, sent: int, job: Job) -> None:
        """The fault drill of ``StageConfig``: fail a stream after ``fail_after_chunks`` chunks."""
        limit, seed = self.config.fail_after_chunks, self.config.fail_seed
        if limit is not None and sent >= limit and seed in (None, job.options.seed):
            raise ServiceError(f"fault drill: stage failed after {sent} chunks")
