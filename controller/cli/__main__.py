"""`python -m controller.cli ...` is `cmkctl ...` (handy before the console script is installed)."""

import sys

from controller.cli.app import main

sys.exit(main())
