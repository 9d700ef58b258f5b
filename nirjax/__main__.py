"""`python -m nirjax ...`: the `nirjax` command line (the same as the `nirjax` script)."""

import sys

from ._cli import main

sys.exit(main())
