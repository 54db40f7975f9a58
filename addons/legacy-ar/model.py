"""A small Tacotron-style acoustic model over piper-joe's text encoding.

Per decoder step it emits ``r`` latent frames. The previous frame goes through a
prenet into a GRU (the attention RNN); each of the ``r`` sub-frames attends over a
monotonic window of the memory with location-sensitive energies (convolved
cumulative and previous alignments). A frame is its attention context over
``m_p`` plus a learned correction; a stop token ends the utterance.

Training is fully teacher-forced: previous frames, the window start and the
location features come from the teacher's durations, so every step runs in
parallel. At inference the hard (argmax) alignment of each step feeds the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LegacyAR(nn.Module):
    """Weights of the whole model; ``forward`` is the parallel teacher-forced pass."""

    def __init__(self, channels: int = 192, memory: int = 64, keys: int = 32, hidden: int = 128,
                 prenet: int = 64, location: int = 8, r: int = 3) -> None:
        super().__init__()
        self.r, self.window = r, r + 1
        self.encoder = nn.Sequential(
            nn.Conv1d(channels, 96, 5, padding=2), nn.ReLU(), nn.Conv1d(96, memory, 5, padding=2), nn.ReLU()
        )
        self.key = nn.Linear(memory, keys)
        self.prenet = nn.Sequential(
            nn.Linear(channels, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, prenet), nn.ReLU(), nn.Dropout(0.5)
        )
        self.rnn = nn.GRU(prenet + memory, hidden, batch_first=True)
        self.query = nn.Linear(hidden, r * keys)
        self.location = nn.Conv1d(2, location, 9)
        self.location_proj = nn.Linear(location, keys, bias=False)
        self.energy = nn.Linear(keys, 1)
        self.offset_bias = nn.Parameter(torch.zeros(r, self.window))
        self.out = nn.Linear(hidden + memory, channels)
        self.stop = nn.Linear(hidden + memory, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)
        # sub-frame i can be at most i + 1 tokens past the previous frame's token
        reach = torch.arange(self.window)[None, :] <= torch.arange(r)[:, None] + 1
        self.register_buffer("reach", reach, persistent=False)

    def encode(self, m_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``m_p [B, C, T]`` -> memory ``[B, T, M]`` and attention keys ``[B, T, K]``."""
        memory = self.encoder(m_p).transpose(1, 2)
        return memory, self.key(memory)

    def window_index(self, start: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token index ``[..., W]`` of each window slot (clamped) and whether the slot exists."""
        index = start[..., None] + torch.arange(self.window, device=start.device)
        valid = index < lengths[..., None]
        return torch.minimum(index, lengths[..., None] - 1), valid

    def attend(self, h: torch.Tensor, valid: torch.Tensor, location: torch.Tensor, keys: torch.Tensor,
               memory: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Window attention of the r sub-frames; every argument but ``h [N, H]`` is windowed ``[N, W, *]``.

        Returns frames ``[N, r, C]``, stop logits ``[N]`` and energies ``[N, r, W]``.
        """
        n = h.shape[0]
        query = self.query(h).view(n, self.r, 1, -1)
        score = self.energy(torch.tanh(query + (keys + self.location_proj(location))[:, None])).squeeze(-1)
        allowed = valid[:, None, :] & self.reach[None]
        score = (score + self.offset_bias).masked_fill(~allowed, -1e4)
        weights = torch.softmax(score, dim=-1)
        state = torch.cat([h[:, None].expand(n, self.r, h.shape[1]), weights @ memory], dim=-1)
        frames = weights @ values + self.out(state)
        return frames, self.stop(state[:, -1]).squeeze(-1), score

    def location_input(self, cum: torch.Tensor, previous: torch.Tensor, start: torch.Tensor, lengths: torch.Tensor
                       ) -> torch.Tensor:
        """Location features ``[N, W, L]`` of the window slots.

        ``cum`` (frames per token so far) and ``previous`` (last step's alignment) are ``[..., T]``,
        ``start`` and ``lengths`` ``[...]``; the conv sees the window and 4 tokens either side.
        """
        index = start[..., None] + torch.arange(-4, self.window + 4, device=start.device)
        inside = ((index >= 0) & (index < lengths[..., None])).float()
        index = torch.minimum(index.clamp(min=0), lengths[..., None] - 1)
        both = torch.stack([torch.gather(previous, -1, index), torch.gather(cum, -1, index) * 0.25], -2)
        both = both * inside.unsqueeze(-2)
        return self.location(both.reshape(-1, 2, index.shape[-1])).transpose(1, 2)

    @torch.jit.unused
    def forward(self, m_p: torch.Tensor, tokens: torch.Tensor, frames: torch.Tensor, positions: torch.Tensor,
                prenet_dropout: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced pass.

        ``m_p [B, C, T]``, ``tokens [B]`` (lengths), ``frames [B, S*r, C]`` targets,
        ``positions [B, S*r]`` token of each target frame (padding: last token).
        Returns predicted frames ``[B, S*r, C]``, stop logits ``[B, S]``, energies ``[B, S, r, W]``
        and window starts ``[B, S]``.
        """
        b, total, c = frames.shape
        steps, t = total // self.r, m_p.shape[2]
        memory, keys = self.encode(m_p)
        last = torch.arange(steps, device=m_p.device) * self.r - 1  # previous step's last frame
        previous = torch.where(last[None, :, None] >= 0, frames[:, last.clamp(min=0)], torch.zeros(()))
        start = torch.where(last[None] >= 0, positions[:, last.clamp(min=0)], torch.zeros((), dtype=torch.long))
        onehot = F.one_hot(positions, t).float()  # [B, F, T]
        before = torch.cumsum(onehot, 1)[:, last.clamp(min=0)] * (last[None, :, None] >= 0)
        prev_attn = before - torch.cat([torch.zeros_like(before[:, :1]), before[:, :-1]], 1)
        self.prenet.train(prenet_dropout)
        here = torch.gather(memory, 1, start[..., None].expand(-1, -1, memory.shape[2]))
        rnn_in = torch.cat([self.prenet(previous), here], -1)
        h, _ = self.rnn(rnn_in)
        lengths = tokens[:, None].expand(b, steps)
        loc = self.location_input(before, prev_attn / self.r, start, lengths)
        index, valid = self.window_index(start, lengths)  # [B, S, W]

        def pick(x: torch.Tensor) -> torch.Tensor:
            flat = index.reshape(b, steps * self.window, 1).expand(-1, -1, x.shape[2])
            return torch.gather(x, 1, flat).view(b * steps, self.window, x.shape[2])

        out, stop, score = self.attend(h.reshape(b * steps, -1), valid.reshape(b * steps, -1), loc, pick(keys),
                                       pick(memory), pick(m_p.transpose(1, 2)))
        return out.reshape(b, total, c), stop.view(b, steps), score.view(b, steps, self.r, -1), start


class Memory(nn.Module):
    """Exported once-per-utterance network: ``m_p [1, C, T]`` -> memory, keys."""

    def __init__(self, model: LegacyAR) -> None:
        super().__init__()
        self.model = model

    def forward(self, m_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(m_p)


class Step(nn.Module):
    """Exported decoder step with explicit state: r frames, stop probability, next state."""

    def __init__(self, model: LegacyAR) -> None:
        super().__init__()
        self.model = model
        self.cell = nn.GRUCell(model.rnn.input_size, model.rnn.hidden_size)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.cell, name).data.copy_(getattr(model.rnn, f"{name}_l0").data)

    def forward(self, frame: torch.Tensor, h: torch.Tensor, cum: torch.Tensor, previous: torch.Tensor,
                position: torch.Tensor, m_p: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                           torch.Tensor]:
        """``frame [1, C]``, ``h [1, H]``, ``cum``/``previous [1, T]``, ``position [1]`` int64."""
        model = self.model
        t = m_p.shape[2]
        here = torch.gather(memory, 1, position.view(1, 1, 1).expand(1, 1, memory.shape[2]))[:, 0]
        x = torch.cat([model.prenet(frame), here], -1)
        h = self.cell(x, h)
        lengths = torch.full_like(position, t)
        loc = model.location_input(cum, previous, position, lengths)
        index, valid = model.window_index(position, lengths)
        slots = index[0]
        values = m_p.transpose(1, 2)[:, slots]
        frames, stop, score = model.attend(h, valid, loc, keys[:, slots], memory[:, slots], values)
        tokens = torch.gather(index, 1, score.argmax(-1))  # [1, r]
        tokens = torch.cummax(tokens, dim=1)[0]
        counts = torch.zeros_like(cum).scatter_add(1, tokens, torch.ones_like(cum[:, : tokens.shape[1]]))
        return (frames.transpose(1, 2), torch.sigmoid(stop), h, cum + counts, counts / model.r,
                tokens[:, -1], tokens)


@torch.no_grad()
def decode(memory_net: nn.Module, step: nn.Module, m_p: torch.Tensor, max_steps: int = 1000, hidden: int = 128
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Free-running decoding of ``m_p [1, C, T]``: frames ``[1, C, F]`` and frame tokens ``[F]``."""
    memory, keys = memory_net(m_p)
    t = m_p.shape[2]
    frame, h = torch.zeros(1, m_p.shape[1]), torch.zeros(1, hidden)
    cum, previous, position = torch.zeros(1, t), torch.zeros(1, t), torch.zeros(1, dtype=torch.long)
    frames, tokens = [], []
    for _ in range(max_steps):
        out, stop, h, cum, previous, position, chosen = step(frame, h, cum, previous, position, m_p, memory, keys)
        frames.append(out)
        tokens.append(chosen[0])
        frame = out[:, :, -1]
        if float(stop) > 0.5:
            break
    return torch.cat(frames, -1), torch.cat(tokens)
