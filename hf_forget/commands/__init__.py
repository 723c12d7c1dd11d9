"""The `hf-forget` subcommands, one module each (see `hf_forget.cli`)."""
