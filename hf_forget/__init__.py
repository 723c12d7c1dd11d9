"""hf-forget: make CLIP encoders forget people."""

__version__ = "0.1.0"
