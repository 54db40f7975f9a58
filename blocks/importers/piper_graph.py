"""Find where a piper VITS graph splits into encoders / flow / vocoder, from its structure alone.

Every cut tensor is identified by what it computes and where it flows: op types, value dependence
on the graph inputs (``input``, ``input_lengths``, ``scales[i]``, ``sid``, the interface piper's
exporter names) and on the two random nodes, and graph topology. Generated node and tensor names
are never read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import onnx

from blocks.errors import VoiceImportError
from blocks.importers.onnx_index import LAYOUT_OPS, SHAPE_ONLY_OPS, GraphIndex
from blocks.importers.piper_cut_plan import CutPlan


class GraphStructureError(VoiceImportError):
    """The graph does not have the structure of a piper VITS voice (names the element not found)."""

    def __init__(self, element: str, problem: str) -> None:
        super().__init__(f"piper graph: {element}: {problem}")
        self.element = element


def _only(element: str, found: list[Any], what: str) -> Any:
    if not found:
        raise GraphStructureError(element, f"not found ({what})")
    if len(found) > 1:
        raise GraphStructureError(element, f"ambiguous: {len(found)} candidates ({what})")
    return found[0]


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class _Finder:
    """The rules, applied in order over one graph; each step sets attributes that later steps use."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.idx = GraphIndex(model)
        self.notes: list[str] = []

    def interface(self) -> None:
        idx = self.idx
        missing = [name for name in ("input", "input_lengths", "scales") if name not in idx.inputs]
        if missing:
            raise GraphStructureError("inputs", f"missing {missing} (has {idx.inputs})")
        self.sid = "sid" if "sid" in idx.inputs else None
        self.audio = _only("audio output", idx.outputs, "the graph must have exactly one output")
        embeddings = [n for n in idx.consumers.get("input", []) if n.op_type == "Gather"
                      and (table := idx.constant(n.input[0])) is not None and table.ndim == 2]
        self.num_symbols = int(idx.constant(_only("phoneme embedding", embeddings,
                                                  "Gather of a 2-D table by `input`").input[0]).shape[0])

    def randoms(self) -> None:
        idx = self.idx
        self.random = {f"random:{i}": node for i, node in enumerate(idx.nodes)
                       if node.op_type in ("RandomNormalLike", "RandomNormal")}
        if not self.random:
            raise GraphStructureError("random nodes", "no RandomNormal(Like) node (the prior noise) found")

    def durations_and_dp_noise(self) -> None:
        idx = self.idx
        ceils = [n.output[0] for n in idx.nodes_of("Ceil")
                 if idx.depends(n.output[0], "input") and idx.depends(n.output[0], "scales[1]")]
        self.durations = _only("durations", ceils, "a Ceil whose values depend on `input` and scales[1]")
        self.after_durations = idx.descendants([self.durations])
        noises = [key for key in self.random if idx.depends(self.durations, key)]
        if not noises:  # a deterministic duration predictor (use_sdp=False)
            self.dp_key, self.dp_noise, self.dp_noise_channels = None, None, None
            self.notes.append("durations depend on no random node: deterministic duration predictor, no dp_noise")
            return
        self.dp_key = _only("dp_noise", noises, "the random node the durations depend on")
        self.dp_noise = self.random[self.dp_key].output[0]
        if not any(idx.depends(n.output[0], "scales[2]") for n in idx.consumers.get(self.dp_noise, [])):
            self.notes.append("dp_noise is not multiplied by scales[2] (noise_w) right away")
        dims = idx.shape(self.dp_noise) or []
        self.dp_noise_channels = (_static(dims[1]) if len(dims) == 3 else None) or self._template_channels()
        if self.dp_noise_channels is None:
            self.dp_noise_channels = 2
            self.notes.append("dp_noise channels not inferred; assumed 2 (VITS stochastic duration predictor)")

    def _template_channels(self) -> int | None:
        """Channels of the dp noise when its shape is built as ``Concat(batch, C, length)``."""
        idx = self.idx
        template = idx.producer.get(self.random[self.dp_key].input[0]) if self.random[self.dp_key].input else None
        concat = idx.producer.get(template.input[0]) if template and template.op_type == "ConstantOfShape" else None
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 3:
            return None
        value = idx.constant(concat.input[1])
        return int(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def prior(self) -> None:
        idx = self.idx
        priors = [key for key in self.random if key != self.dp_key and idx.depends(self.audio, key)]
        self.prior_key = _only("prior noise", priors, "a second random node that the audio depends on")
        self.prior_noise = self.random[self.prior_key].output[0]
        below = idx.descendants([self.prior_noise])
        adds = []
        for i in sorted(below):
            node = idx.nodes[i]
            if node.op_type != "Add":
                continue
            noisy = [idx.depends(name, self.prior_key) for name in node.input]
            if noisy.count(True) == 1 and idx.depends(node.input[noisy.index(False)], "input"):
                adds.append(node)
                break  # the first such Add in graph order
        add = _only("z_p", adds, "an Add of the prior noise and a noise-free encoding")
        self.z_p = add.output[0]
        noisy_side = next(name for name in add.input if idx.depends(name, self.prior_key))
        clean_side = next(name for name in add.input if not idx.depends(name, self.prior_key))
        self.m_p = self._unrepeat("m_p", clean_side)
        self.logs_p = self._unrepeat("logs_p", self._exp_factor(noisy_side))
        self._check_prior_split()

    def _unrepeat(self, element: str, repeated: str) -> str:
        """The per-phoneme tensor that ``repeated`` is expanded from by the alignment MatMul."""
        idx = self.idx
        name = list(idx.walk_back(repeated))[-1]
        node = idx.producer.get(name)
        if node is None or node.op_type != "MatMul":
            raise GraphStructureError(element, "not reached: the frame-rate tensor is not made by an alignment MatMul")
        plain = [x for x in node.input if not self._on_durations(x)]
        source = _only(element, plain, "the MatMul input that does not depend on the durations")
        return list(idx.walk_back(source))[-1]

    def _on_durations(self, name: str) -> bool:
        """Whether ``name`` is computed (by value or shape) from the durations."""
        producer = self.idx.producer.get(name)
        return producer is not None and self.idx.index[id(producer)] in self.after_durations

    def _exp_factor(self, noisy: str) -> str:
        """Input of the ``Exp`` multiplied into the prior noise (``noise * exp(logs_p) * noise_scale``)."""
        idx = self.idx
        exps, stack, seen = [], [noisy], set()
        while stack:
            node = idx.producer.get(stack.pop())
            if node is None or id(node) in seen or node.op_type not in ("Mul", *LAYOUT_OPS):
                continue
            seen.add(id(node))
            for name in node.input:
                producer = idx.producer.get(name)
                if producer is not None and producer.op_type == "Exp" and not idx.depends(name, self.prior_key):
                    exps.append(producer.input[0])
                elif idx.depends(name, self.prior_key):
                    stack.append(name)
        return _only("logs_p", exps, "an Exp multiplied into the prior noise")

    def _check_prior_split(self) -> None:
        idx = self.idx
        split = idx.producer.get(self.m_p)
        if split is not None and split.op_type == "Split" and list(split.output[:2]) == [self.m_p, self.logs_p]:
            axis = idx.attr(split, "axis", 0)
            if axis != 1:
                raise GraphStructureError("m_p/logs_p", f"the prior Split is along axis {axis}, not channels")
            sizes = idx.constant(split.input[1]) if len(split.input) > 1 else None
            if sizes is not None and sizes.size == 2 and sizes[0] == sizes[1]:
                self.split_channels = int(sizes[0])
        else:
            self.notes.append("m_p and logs_p are not the two outputs of one Split")

    def generator(self) -> None:
        idx = self.idx
        above = idx.ancestors([self.audio])
        ups = idx.nodes_of("ConvTranspose", above)
        if not ups:
            raise GraphStructureError("vocoder", "no ConvTranspose upsampling layers before the output")
        first = ups[0]
        convs, stack, seen = [], [first.input[0]], set()
        while stack:
            node = idx.producer.get(stack.pop())
            if node is None or id(node) in seen or node.op_type in SHAPE_ONLY_OPS:
                continue
            seen.add(id(node))
            if node.op_type == "Conv":
                convs.append(node)
                continue
            stack.extend(name for name in node.input if name and not idx.is_constant(name))
        pre = _only("z (generator input)", [c for c in convs if idx.depends(c.input[0], self.prior_key)],
                    "the Conv before the first ConvTranspose that the prior noise reaches")
        self.z = pre.input[0]
        weight = idx.constant(pre.input[1])
        if weight is None or weight.ndim != 3:
            raise GraphStructureError("z (generator input)", "the generator's first Conv has no constant 1-D kernel")
        self.generator_channels, self.inter_channels = int(weight.shape[0]), int(weight.shape[1])
        rates = []
        for up in ups:
            strides = idx.attr(up, "strides", [1])
            rates.append(int(strides[0]))  # type: ignore[index]
        below_z = idx.descendants([self.z])
        down = [int(idx.attr(c, "strides", [1])[0]) for c in idx.nodes_of("Conv", below_z & above)]  # type: ignore[index]
        self.upsample_rates = tuple(rates)
        self.hop = math.prod(rates) // math.prod(down)
        if getattr(self, "split_channels", self.inter_channels) != self.inter_channels:
            raise GraphStructureError("inter channels", f"prior has {self.split_channels} channels, generator "
                                      f"takes {self.inter_channels}")

    def speaker(self) -> None:
        idx = self.idx
        self.g = None
        self.num_speakers, self.speaker_channels = 1, None
        self.g_enters: dict[str, list[str]] = {}
        if self.sid is None:
            return
        gathers = [n for n in idx.consumers.get(self.sid, []) if n.op_type == "Gather"
                   and (table := idx.constant(n.input[0])) is not None and table.ndim == 2]
        gather = _only("speaker embedding", gathers, "Gather of a 2-D table by `sid`")
        table = idx.constant(gather.input[0])
        self.num_speakers, self.speaker_channels = int(table.shape[0]), int(table.shape[1])
        name = gather.output[0]
        while True:
            users = idx.consumers.get(name, [])
            if len(users) != 1 or users[0].op_type not in ("Unsqueeze", "Identity", "Reshape"):
                break
            name = users[0].output[0]
        dims = idx.shape(name)
        if dims is not None and (len(dims) != 3 or dims[2] != 1):
            raise GraphStructureError("g", f"the speaker embedding reaches its users as shape {dims}, not [1, gin, 1]")
        self.g = name

    def flow_mask(self) -> None:
        idx = self.idx
        stop = {self.z_p, *([self.g] if self.g else [])}
        region = idx.ancestors([self.z], stop) & idx.descendants([self.z_p])
        made = {out for i in region for out in idx.nodes[i].output}
        external = []
        for i in sorted(region):
            for name in idx.nodes[i].input:
                if not name or name in made or name in stop or idx.is_constant(name) or name in external:
                    continue
                if self.g and idx.sources.get(name, frozenset()) <= {self.sid}:
                    continue  # speaker conditioning, computed from g
                external.append(name)
        candidates = [c for c in external if self._explains(c, external)]
        self.mask = _only("mask", candidates, f"one frame mask that every other flow side input derives from "
                                              f"(side inputs: {len(external)})")
        dims = idx.shape(self.mask)
        if dims is not None and (len(dims) != 3 or dims[1] != 1):
            raise GraphStructureError("mask", f"the flow's side input has shape {dims}, not [1, 1, frames]")
        if not self._on_durations(self.mask):
            raise GraphStructureError("mask", "the flow's side input does not depend on the durations")

    def _explains(self, candidate: str, others: list[str]) -> bool:
        """Whether every tensor in ``others`` is computed from ``candidate`` and constants only."""
        idx = self.idx
        for other in others:
            for i in idx.ancestors([other], {candidate}):
                node = idx.nodes[i]
                if node.op_type in ("RandomNormalLike", "RandomNormal"):
                    return False
                if any(name in idx.inputs for name in node.input):
                    return False
            if other != candidate and other in idx.inputs:
                return False
        return True

    def g_users(self) -> None:
        if self.g is None:
            return
        idx = self.idx
        regions = {"encoders": idx.ancestors([self.durations]),
                   "flow": idx.ancestors([self.z], {self.z_p, self.mask, self.g}),
                   "vocoder": idx.ancestors([self.audio], {self.z, self.g})}
        names, users = [self.g], []
        while names:
            for node in idx.consumers.get(names.pop(), []):
                if node.op_type in ("Identity",):
                    names.append(node.output[0])
                else:
                    users.append(node)
        for node in users:
            where = [region for region, nodes in regions.items() if idx.index[id(node)] in nodes]
            weight = idx.constant(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
            what = f"Conv {weight.shape[1]}->{weight.shape[0]}" if weight is not None else node.op_type
            for region in where:
                self.g_enters.setdefault(region, []).append(what)
        for region in ("encoders", "flow", "vocoder"):
            if region not in self.g_enters:
                self.notes.append(f"the speaker embedding does not enter the {region}")

    def closed(self, network: str, inputs: list[str], outputs: list[str]) -> None:
        """Raise unless ``outputs`` are computed from ``inputs`` and constants alone, with no random node."""
        idx = self.idx
        stop = set(inputs)
        nodes = idx.ancestors(outputs, stop)
        made = {out for i in nodes for out in idx.nodes[i].output} | stop
        for i in sorted(nodes):
            node = idx.nodes[i]
            if node.op_type in ("RandomNormalLike", "RandomNormal", "RandomUniformLike", "RandomUniform"):
                raise GraphStructureError(network, f"still contains a random {node.op_type} node")
            loose = [name for name in node.input if name and name not in made and not idx.is_constant(name)]
            if loose:
                raise GraphStructureError(network, f"also reads {loose} ({node.op_type}), not among its cut inputs")


def find_plan(model: onnx.ModelProto | str | Path, config: dict[str, Any] | None = None) -> CutPlan:
    """The cut plan of a piper voice graph; raises GraphStructureError naming what was not understood."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    finder = _Finder(model)
    finder.interface()
    finder.randoms()
    finder.durations_and_dp_noise()
    finder.prior()
    finder.generator()
    finder.speaker()
    finder.flow_mask()
    finder.g_users()
    f = finder
    plan = CutPlan(
        dp_noise=f.dp_noise, prior_noise=f.prior_noise, m_p=f.m_p, logs_p=f.logs_p, durations=f.durations,
        z_p=f.z_p, mask=f.mask, z=f.z, audio=f.audio, sid=f.sid, g=f.g, inter_channels=f.inter_channels,
        dp_noise_channels=f.dp_noise_channels, hop=f.hop, upsample_rates=f.upsample_rates,
        generator_channels=f.generator_channels, num_symbols=f.num_symbols, num_speakers=f.num_speakers,
        speaker_channels=f.speaker_channels, g_enters=f.g_enters, notes=f.notes,
    )
    for network, (inputs, outputs) in plan.cuts().items():
        finder.closed(network, inputs, outputs)
    if config is not None:
        _check_config(plan, config)
    return plan


def _check_config(plan: CutPlan, config: dict[str, Any]) -> None:
    speakers = int(config.get("num_speakers", 1))
    if (speakers > 1) != plan.multi_speaker or (plan.multi_speaker and speakers != plan.num_speakers):
        raise GraphStructureError("num_speakers", f"config says {speakers}, graph has {plan.num_speakers}")
    symbols = config.get("num_symbols")
    if symbols is not None and int(symbols) != plan.num_symbols:
        plan.notes.append(f"config num_symbols {symbols} != embedding rows {plan.num_symbols}")
    hop = config.get("hop_length")
    if hop is not None and int(hop) != plan.hop:
        raise GraphStructureError("hop", f"config hop_length {hop} != upsampling product {plan.hop}")

