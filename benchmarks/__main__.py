"""``python -m benchmarks all [--quick]``: see ``benchmarks/suite.py`` and docs/benchmarks.md."""

import sys

from .suite import main

sys.exit(main())
