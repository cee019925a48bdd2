"""`python -m partui`: the same as the `partui` command.

`partui` is a namespace package: this folder holds only this file, and the code
folders install beside it as partui.kernels, partui.profiles and partui.tui.
"""

import sys

from partui.tui.cli import main

sys.exit(main())
