"""`python -m partui`: the same as the `partui` command.

`partui` is a namespace package whose only own file is this one: pyproject.toml installs
this folder as `partui` (package-dir), and the code folders beside it as partui.kernels,
partui.profiles and partui.tui. It lives under tui/ because it is the command line's.
"""

import sys

from partui.tui.cli.entry import main

sys.exit(main())
