"""``python -m stemseg_fast.cli ...``: the ``stemseg-fast`` command."""

import sys

from . import main

sys.exit(main())
