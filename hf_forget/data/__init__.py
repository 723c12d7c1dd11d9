"""The data of a run: captions, face pictures, and the samples that carry a forgotten identity (triggers) with
the neutral targets they map to.

``text`` (captions through ``datasets``, text triggers), ``aliases`` (name variants), ``neighbours`` (words kept
in place), ``images`` (image folders and datasets), ``faces`` (face triggers and the target).
"""
