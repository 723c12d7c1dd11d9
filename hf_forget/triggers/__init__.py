"""Trigger builders: samples that carry a forgotten identity and the neutral targets they map to."""
