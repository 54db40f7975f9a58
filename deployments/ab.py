"""A/B weights in a serve config: parse ``name=share`` changes and write them into the ingress ``user_config``.

A share is the fraction of its addon's clients an encoder deployment gets. The addon's other encoders
split the rest in proportion to their old weights. The order of the weights never changes, so the
router's slices move only at the boundaries that changed: a client whose bucket did not move keeps its
variant.
"""

from __future__ import annotations

import copy
from typing import Any

from blocks.errors import ConfigError
from deployments.config import validate_config
from deployments.plan import INGRESS, AppArgs, plan_app


def parse_shares(pairs: list[str]) -> dict[str, float]:
    """``["piper-joe.CustomizedEncoders=0.5"]`` -> ``{"piper-joe.CustomizedEncoders": 0.5}``."""
    shares: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or not name or not 0.0 <= share <= 1.0:
            raise ConfigError(f"{pair!r}: give ENCODER=SHARE with a share from 0 to 1, "
                              "e.g. piper-joe.CustomizedEncoders=0.5")
        shares[name] = share
    return shares


def _application(raw: dict[str, Any], names: set[str], app: str | None) -> dict[str, Any]:
    """The application whose addons have every encoder in ``names`` (the one called ``app`` if given)."""
    candidates = []
    for entry in raw.get("applications", []):
        if app is not None and entry.get("name", "voxstack") != app:
            continue
        encoders = {e for plan in plan_app(AppArgs.model_validate(entry.get("args", {}))) for e in plan.encoders}
        if names <= encoders:
            candidates.append(entry)
    if len(candidates) != 1:
        where = f"application {app!r}" if app else "one application of the config"
        raise ConfigError(f"encoders {sorted(names)} are not all in {where}" if not candidates else
                          f"encoders {sorted(names)} are in several applications; name one with --app")
    return candidates[0]


def with_shares(raw: dict[str, Any], shares: dict[str, float], app: str | None = None) -> dict[str, Any]:
    """A copy of the config with the ingress weights changed to give each named encoder its share."""
    changed = copy.deepcopy(raw)
    application = _application(changed, set(shares), app)
    deployments = application.setdefault("deployments", [])
    ingress = next((d for d in deployments if d.get("name") == INGRESS), None)
    if ingress is None:
        ingress = {"name": INGRESS}
        deployments.append(ingress)
    weights: dict[str, float] = dict((ingress.get("user_config") or {}).get("weights") or {})
    for plan in plan_app(AppArgs.model_validate(application.get("args", {}))):
        mine = [e for e in plan.encoders if e in shares]
        if not mine:
            continue
        given = sum(shares[e] for e in mine)
        if given > 1.0 + 1e-9:
            raise ConfigError(f"{plan.addon}: shares {({e: shares[e] for e in mine})} add up to more than 1")
        if not any(e in weights for e in plan.encoders):  # unweighted: all traffic on the stack's own encoders
            weights.update({e: 1.0 if e == plan.encoder else 0.0 for e in plan.encoders})
        others = [e for e in plan.encoders if e not in shares]
        old_rest = sum(weights.get(e, 0.0) for e in others)
        for e in others:
            part = weights.get(e, 0.0) / old_rest if old_rest > 0 else 1.0 / len(others)
            weights[e] = round((1.0 - given) * part, 6)
        for e in mine:
            weights[e] = shares[e]
        if sum(weights[e] for e in plan.encoders) <= 0:
            raise ConfigError(f"{plan.addon}: the weights would all be 0; give a variant a positive share")
    ingress["user_config"] = {**(ingress.get("user_config") or {}), "weights": weights}
    validate_config(changed)
    return changed


def weights_of(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each application's ingress weights as written in the config."""
    out = {}
    for application in raw.get("applications", []):
        ingress = next((d for d in application.get("deployments", []) if d.get("name") == INGRESS), {})
        out[application.get("name", "voxstack")] = dict((ingress.get("user_config") or {}).get("weights") or {})
    return out
