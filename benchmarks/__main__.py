"""``python -m benchmarks``: see ``docs/benchmarks.md``."""

import sys

from benchmarks._harness import main

sys.exit(main())
