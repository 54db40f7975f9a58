"""voxstack blocks: the framework, its components, and the in-process runtime (no Ray needed)."""

from blocks.addon import Addon, list_addons
from blocks.core import Chunk, ChunkMeta, Request, SequenceBlock, StreamableBlock, Tensors
from blocks.engine import Encoded, Engine
from blocks.errors import AddonError, InputError, StackError
from blocks.marks import Mark
from blocks.registry import register
from blocks.spec import parse_stack
from blocks.voice import AudioChunk, SynthesisResult, Voice, load_addon

__all__ = [
    "Addon",
    "AddonError",
    "AudioChunk",
    "Chunk",
    "ChunkMeta",
    "Encoded",
    "Engine",
    "InputError",
    "Mark",
    "Request",
    "SequenceBlock",
    "StackError",
    "StreamableBlock",
    "SynthesisResult",
    "Tensors",
    "Voice",
    "list_addons",
    "load_addon",
    "parse_stack",
    "register",
]
