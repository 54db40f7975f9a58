"""Built-in components (found through blocks.registry, imported when first needed)."""
