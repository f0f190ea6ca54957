"""``python -m benchmarks``: see ``benchmarks/README.md``."""

import sys

from benchmarks._harness import main

sys.exit(main())
