"""``python -m stemseg_fast ...`` (what ``torchrun -m stemseg_fast infer|train ...`` starts): the
``stemseg-fast`` command."""

import sys

from stemseg_fast.cli import main

sys.exit(main())
