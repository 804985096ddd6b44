"""``python -m ser`` is the ``ser`` command."""

import sys

from .cli import main

sys.exit(main())
