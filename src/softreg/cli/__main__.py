"""``python -m softreg.cli``: the ``softreg`` command."""

import sys

from softreg.cli import main

sys.exit(main())
