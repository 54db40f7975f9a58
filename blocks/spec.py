"""Parse and validate a stack spec before any network loads, then build it into blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from blocks import registry
from blocks.contracts import Contract
from blocks.core import Block, SequenceBlock, StreamableBlock
from blocks.errors import StackError, describe_validation

if TYPE_CHECKING:
    from blocks.context import BlockContext

_KIND_NAMES = {SequenceBlock: "SequenceBlock", StreamableBlock: "StreamableBlock", Block: "block"}


@dataclass
class Node:
    """A validated spec entry: its class, parsed options and child nodes by slot."""

    cls: type[Block]
    options: BaseModel
    path: str
    children: dict[str, Node | list[Node]] = field(default_factory=dict)
    contract: Contract | None = None
    """What the block reads and writes, set when the stack is checked against its addon."""

    def build(self, context: BlockContext | None) -> Block:
        """The block (and its children), each knowing its declared contract and path."""
        built: dict[str, Any] = {
            slot: [c.build(context) for c in child] if isinstance(child, list) else child.build(context)
            for slot, child in self.children.items()
        }
        block = self.cls(context, self.options, **built)
        block.declared, block.path = self.contract, self.path
        return block


def parse_stack(spec: Any, path: str = "$.stack") -> list[Node]:
    """Validate a top-level stack: a list of StreamableBlocks (a single object is one item)."""
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise StackError(path, "the stack is empty: give at least one StreamableBlock")
    prefix = path if isinstance(spec, list) else None
    return [
        parse_node(item, f"{prefix}[{i}]" if prefix else path, StreamableBlock)
        for i, item in enumerate(items)
    ]


def parse_node(spec: Any, path: str, kind: type[Block] = Block) -> Node:
    """Validate one entry ``{"type": NAME, ...}`` and its children, recursively."""
    if not isinstance(spec, dict):
        raise StackError(path, f"expected an object with a 'type', got {type(spec).__name__}")
    name = spec.get("type")
    valid = registry.names(kind)
    if not isinstance(name, str):
        raise StackError(path, f"missing 'type'; valid {_KIND_NAMES[kind]} types: {valid}")
    cls = registry.lookup(name)
    if cls is None:
        raise StackError(f"{path}.type", f"unknown type {name!r}; valid types: {valid}")
    if not issubclass(cls, kind):
        raise StackError(
            f"{path}.type",
            f"{name!r} is not a {_KIND_NAMES[kind]} and cannot go here; valid types: {valid}",
        )
    children: dict[str, Node | list[Node]] = {}
    for slot, (slot_kind, is_list) in cls.slots.items():
        if slot not in spec:
            raise StackError(path, f"{name} needs the key {slot!r}")
        value, slot_path = spec[slot], f"{path}.{slot}"
        if is_list:
            if not isinstance(value, list) or not value:
                raise StackError(slot_path, f"expected a non-empty list of {_KIND_NAMES[slot_kind]}s")
            children[slot] = [
                parse_node(v, f"{slot_path}[{i}]", slot_kind) for i, v in enumerate(value)
            ]
        else:
            children[slot] = parse_node(value, slot_path, slot_kind)
    rest = {k: v for k, v in spec.items() if k != "type" and k not in cls.slots}
    try:
        options = cls.Options.model_validate(rest)
    except ValidationError as error:
        where, _, message = describe_validation(error, root=path).partition(": ")
        raise StackError(where, f"{message} (in {name})") from None
    return Node(cls, options, path, children)


def build_stack(nodes: list[Node], context: BlockContext | None) -> list[Block]:
    """Instantiate validated nodes (this is where networks load)."""
    return [node.build(context) for node in nodes]


def tree(node: Node, indent: str = "") -> str:
    """A readable tree of a parsed stack entry and its children, with the options it sets."""
    shown = node.options.model_dump(exclude_defaults=True)
    lines = [f"{indent}{node.cls.type_name or node.cls.__name__}{f' {shown}' if shown else ''}"]
    for child in node.children.values():
        lines += [tree(c, indent + "  ") for c in (child if isinstance(child, list) else [child])]
    return "\n".join(lines)
