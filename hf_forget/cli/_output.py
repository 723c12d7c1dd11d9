"""Where a command writes: logs and progress to stderr, its result to stdout.

A training command's stdout is one JSON line, its summary, so that ``hf-forget text ... | jq`` works:
whatever the run prints on the way (the Trainer's loss dicts, tqdm's messages) is sent to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to the current ``sys.stderr`` (not the one at creation, which tests replace)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the property always answers sys.stderr
        pass


def configure_logging(verbose: bool = False) -> None:
    """``hf_forget`` and ``transformers`` log to stderr: warnings, or with ``verbose`` also info."""
    from transformers.utils import logging as hf_logging  # noqa: PLC0415 - not for `hf-forget --help`

    level = logging.INFO if verbose else logging.WARNING
    if verbose:
        hf_logging.set_verbosity_info()
    else:
        hf_logging.set_verbosity_warning()
        hf_logging.disable_progress_bar()  # weight-loading bars; training shows its own (--disable_tqdm)
    own = logging.getLogger("hf_forget")  # our modules log under their own names, not "transformers"
    own.setLevel(level)
    ours = [handler for handler in own.handlers if isinstance(handler, _StderrHandler)]
    if verbose and not ours:
        own.addHandler(_StderrHandler())
    elif not verbose:  # warnings reach stderr through logging's last-resort handler, as for any library
        for handler in ours:
            own.removeHandler(handler)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what a run prints (the Trainer's log dicts, ``tqdm.write``) to stderr; stdout keeps the result."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_summary(summary: dict) -> None:
    """The command's result on stdout: one JSON line."""
    print(json.dumps(summary), file=sys.stdout, flush=True)
