"""The public pieces of the `nirjax` command line that other packages' commands use (the
`training` package's `train`, `fit` and `characterize`): the one-line usage error and the
checked flag values.

- `UsageError`: raise it from a command for a bad flag or argument (one line, exit code 2).
- `number(">0", ...)`, `integer(">=1", ...)`: argparse `type=` callables that range-check.
- `check_writable(flag, path)`, `check_readable(flag, path)`: path checks made before any work;
  `check_outputs((flag, path), ..., plot=...)`: those for every output, with stale temporaries
  removed and matplotlib checked for a plot.
- `remove_stale_temporaries(path)`: remove the temporaries a killed job left beside `path`
  (or in the folder `path`).
"""

from ._atomic import remove_stale_temporaries as remove_stale_temporaries
from ._cli import UsageError as UsageError
from ._flags import (
    check_outputs as check_outputs,
    check_readable as check_readable,
    check_writable as check_writable,
    integer as integer,
    number as number,
)
