"""``python -m lrfit``: the same command line as the ``lrfit`` console command."""

import sys

from .cli import main

sys.exit(main())
