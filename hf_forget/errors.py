"""Exceptions raised at the library boundary.

Every error a user can fix is a :class:`ForgetInputError`: its message says what is wrong and what to
do. The CLI prints it as one line on stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations


class ForgetInputError(ValueError):
    """A user input (names, captions, faces, model, output directory, ...) cannot be used."""


class QualityGateError(RuntimeError):
    """A finished run did not meet its quality gate; the output is marked as not passing."""
