"""Distil piper-joe's upsampled latents into the legacy-ar attention model.

Teacher data: generated sentences through piper-joe's frontend and encoders with
the noise off; the target of each frame is ``m_p`` of its token, repeated for the
token's duration. Losses: L1 on frames, cross-entropy of each sub-frame's attention
against its true token (duration-supervised attention), and the stop token.

Run: ``nice -n 10 python addons/legacy-ar/train.py`` (writes ``weights/legacy-ar.pt``
and ``training_log.txt``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]

from metrics import dtw_cosine  # noqa: E402
from model import LegacyAR, Memory, Step, decode  # noqa: E402
from sentences import sentences  # noqa: E402

Example = tuple[torch.Tensor, torch.Tensor]  # m_p [C, T], durations [T]


def teacher_data(texts: list[str]) -> list[Example]:
    """piper-joe's ``m_p`` and durations of each text, noise off."""
    from blocks import load_addon

    voice = load_addon("piper-joe")
    encoders = voice.addon.network("encoders")
    found = []
    for text in texts:
        for utterance in voice.frontend.utterances(text):
            ids = np.asarray([utterance.ids], dtype=np.int64)
            t = ids.shape[1]
            out = encoders.run({"input": ids, "input_lengths": np.asarray([t]),
                                "dp_noise": np.zeros((1, 2, t), np.float32),
                                "scales": np.asarray([0.0, 1.0, 0.0], np.float32)})
            found.append((torch.from_numpy(out["m_p"][0]), torch.from_numpy(out["durations"].reshape(-1)).long()))
    return found


def cached(name: str, count: int, seed: int, exclude: set[str] | None = None) -> tuple[list[str], list[Example]]:
    path = HERE / "cache" / f"{name}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    texts = [s for s in sentences(count + len(exclude or ()), seed) if s not in (exclude or set())][:count]
    data = (texts, teacher_data(texts))
    path.parent.mkdir(exist_ok=True)
    torch.save(data, path)
    return data


def batch(examples: list[Example], r: int) -> dict[str, torch.Tensor]:
    """Pad a list of examples into model inputs, targets and masks."""
    t = max(m.shape[1] for m, _ in examples)
    frames = max(int(d.sum()) for _, d in examples)
    total = -(-frames // r) * r
    m_p = torch.zeros(len(examples), examples[0][0].shape[0], t)
    positions = torch.zeros(len(examples), total, dtype=torch.long)
    lengths, counts = [], []
    for i, (m, d) in enumerate(examples):
        m_p[i, :, : m.shape[1]] = m
        pos = torch.repeat_interleave(torch.arange(m.shape[1]), d)
        positions[i] = torch.cat([pos, pos.new_full((total - len(pos),), m.shape[1] - 1)])
        lengths.append(m.shape[1])
        counts.append(len(pos))
    target = torch.gather(m_p.transpose(1, 2), 1, positions[..., None].expand(-1, -1, m_p.shape[1]))
    return {"m_p": m_p, "tokens": torch.tensor(lengths), "frames": target, "positions": positions,
            "counts": torch.tensor(counts)}


def losses(model: LegacyAR, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frame L1, attention cross-entropy and stop BCE of one batch."""
    pred, stop, score, start = model(b["m_p"], b["tokens"], b["frames"], b["positions"])
    r, (n, total) = model.r, b["positions"].shape
    mask = (torch.arange(total)[None] < b["counts"][:, None]).float()
    l1 = ((pred - b["frames"]).abs().mean(-1) * mask).sum() / mask.sum()
    offset = (b["positions"].view(n, -1, r) - start[..., None]).clamp(0, model.window - 1)
    ce = F.cross_entropy(score.reshape(-1, model.window), offset.reshape(-1), reduction="none")
    ce = (ce * mask.reshape(-1)).sum() / mask.sum()
    steps = -(-b["counts"] // r)
    k = torch.arange(stop.shape[1])[None]
    target = (k >= steps[:, None] - 1).float()
    step_mask = (k < steps[:, None] + 2).float()
    bce = F.binary_cross_entropy_with_logits(stop, target, pos_weight=torch.tensor(5.0), reduction="none")
    return l1, ce, (bce * step_mask).sum() / step_mask.sum()


def held_out_cosine(model: LegacyAR, examples: list[Example]) -> tuple[float, float]:
    """Free-running frame cosine after DTW, and mean |frames - teacher frames| / teacher frames."""
    model.eval()
    memory, step = Memory(model), Step(model).eval()
    cosines, ratios = [], []
    for m_p, durations in examples:
        frames, _ = decode(memory, step, m_p[None], max_steps=400)
        teacher = m_p[:, torch.repeat_interleave(torch.arange(m_p.shape[1]), durations)]
        cosines.append(dtw_cosine(frames[0].numpy(), teacher.numpy()))
        ratios.append(frames.shape[2] / teacher.shape[1])
    model.train()
    return float(np.mean(cosines)), float(np.mean(np.abs(np.log(ratios))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=20.0, help="stop after this much training time")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    texts, train = cached("train", args.sentences, seed=1)
    _, held = cached("held_out", 24, seed=2, exclude=set(texts))
    if args.data_only:
        return 0
    model = LegacyAR()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-6)
    log = open(HERE / "training_log.txt", "w", encoding="utf-8")

    def say(line: str) -> None:
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    say(f"legacy-ar: {params} parameters, r={model.r}, {len(train)} train / {len(held)} held-out utterances")
    order = sorted(range(len(train)), key=lambda i: train[i][0].shape[1])
    batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    began, rng, decays = time.time(), random.Random(0), [0.6, 0.85]
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(batches)
        sums = np.zeros(3)
        for indices in batches:
            l1, ce, bce = losses(model, batch([train[i] for i in indices], model.r))
            optimizer.zero_grad()
            (l1 + ce + bce).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            sums += [l1.item(), ce.item(), bce.item()]
        l1, ce, bce = sums / len(batches)
        cosine, length = held_out_cosine(model, held[:6])
        minutes = (time.time() - began) / 60
        say(f"epoch {epoch:3d} {minutes:5.1f} min  l1 {l1:.4f}  attn_ce {ce:.4f}  stop {bce:.4f}  "
            f"held-out dtw cosine {cosine:.4f}  |log length ratio| {length:.3f}")
        if minutes > args.minutes:
            break
        while decays and max(minutes / args.minutes, epoch / args.epochs) > decays[0]:
            decays.pop(0)
            for group in optimizer.param_groups:
                group["lr"] *= 0.3
    cosine, length = held_out_cosine(model, held)
    say(f"final: held-out ({len(held)}) dtw cosine {cosine:.4f}, |log length ratio| {length:.3f}, "
        f"{(time.time() - began) / 60:.1f} min")
    (HERE / "weights").mkdir(exist_ok=True)
    torch.save(model.state_dict(), HERE / "weights" / "legacy-ar.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
