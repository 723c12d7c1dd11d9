"""Diffusers pipelines whose text encoders hf-forget defends (Stable Diffusion 1.x/2.x, SDXL, SD3, FLUX).

Everything here imports diffusers, so it is loaded on first use.
"""

_EXPORTS = ("assemble_pipeline", "forget_pipeline", "load_pipeline_text_encoders", "pipeline_roles",
            "PipelineTextEncoder")  # fmt: skip

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from . import stable_diffusion

        return getattr(stable_diffusion, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
