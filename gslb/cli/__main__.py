"""`python -m gslb.cli`: the `gslb` command."""

import sys

from gslb.cli import main

sys.exit(main())
