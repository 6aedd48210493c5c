import sys

from softreg.cli import main

sys.exit(main())
