"""`python -m myna` runs the daemon, like `mynad`."""

import sys

from .app import main

sys.exit(main())
