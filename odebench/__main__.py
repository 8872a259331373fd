"""``python -m odebench`` is the ``odebench`` command."""

import sys

from odebench.cli import main

sys.exit(main())
