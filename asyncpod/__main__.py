"""``python -m asyncpod``."""

import sys

from asyncpod._cli import main

sys.exit(main())
