"""`python -m jupervisor` is the `jupervisor` command."""

import sys

from ._cli import main

sys.exit(main())
