"""voxstack blocks: the framework, its components, and the in-process runtime (no Ray needed)."""

from blocks.addon import Addon, list_addons, load_addon
from blocks.core import Chunk, Request, SequenceBlock, StreamableBlock, Tensors
from blocks.errors import AddonError, InputError, StackError
from blocks.registry import register
from blocks.spec import parse_stack
from blocks.voice import AudioChunk, Synthesis, Voice

__all__ = [
    "Addon",
    "AddonError",
    "AudioChunk",
    "Chunk",
    "InputError",
    "Request",
    "SequenceBlock",
    "StackError",
    "StreamableBlock",
    "Synthesis",
    "Tensors",
    "Voice",
    "list_addons",
    "load_addon",
    "parse_stack",
    "register",
]
