"""``python -m softreg``: the command-line tool (see :func:`softreg.cli.main`)."""

import sys

from softreg.cli import main

sys.exit(main())
