"""Encoders: the addon's encoder networks as a SequenceBlockContainer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from blocks.components.network_block import feeds_for
from blocks.config import AddonConfig
from blocks.containers import SequenceBlockContainer
from blocks.context import BlockContext
from blocks.contracts import Contract, network_contract
from blocks.core import Block, Request, SequenceBlock, Tensors, needs_context
from blocks.errors import AddonError


class NetworkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: str


class NetworkBlock(SequenceBlock):
    """Runs one network of the addon once per utterance."""

    Options = NetworkOptions

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        self.network = needs_context(self, context).network(self.options.network)

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        return network_contract(options.network, config, path)

    def warm_up(self) -> None:
        self.network.warm_up()

    def run(self, inputs: Tensors, request: Request) -> Tensors:
        return self.network.run(feeds_for(self.network, inputs, request), request.tally)


class EncodersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    networks: list[str] | None = None
    """Encoder networks to run, in order (default: every network with role ``encoder``)."""


class Encoders(SequenceBlockContainer):
    """Creates one Network block per encoder network of the addon and runs them in order."""

    Options = EncodersOptions
    slots = {}

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        opts = options if options is not None else EncodersOptions()
        names = encoder_names(needs_context(self, context), opts.networks)
        blocks: list[SequenceBlock] = [NetworkBlock(context, NetworkOptions(network=name)) for name in names]
        super().__init__(context, opts, blocks)

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        return encoders_contract(options.networks, config, path)

    def children(self) -> list[Block]:
        return list(self.blocks)


def encoder_names(context: BlockContext, networks: list[str] | None) -> list[str]:
    """The named encoder networks, or every one with role ``encoder``; at least one."""
    names = networks or context.networks_with_role("encoder")
    if not names:
        raise AddonError(f"addon {context.name!r} declares no network with role 'encoder'")
    return names


def encoders_contract(networks: list[str] | None, config: AddonConfig, path: str) -> Contract:
    """The named encoder networks (default: every one with role ``encoder``) run in order."""
    names = networks or [name for name, net in config.networks.items() if net.role == "encoder"]
    combined = Contract()
    for name in names:
        combined = combined.then(network_contract(name, config, path))
    return combined
