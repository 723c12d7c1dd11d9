"""`python -m hf_forget.cli` and `accelerate launch -m hf_forget.cli COMMAND ...`."""

import sys

from . import main

sys.exit(main())
