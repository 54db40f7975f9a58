"""Built-in components; importing this package registers them."""

from blocks.components import (  # noqa: F401
    attention_decoder,
    customized_encoders,
    decoder,
    diagnostics,
    effects,
    encoders,
    frontend,
    harmonic_vocoder,
    hibari_frontend,
    upsampler,
)
