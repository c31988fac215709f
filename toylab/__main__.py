"""`python -m toylab` runs the CLI."""

import sys

from toylab.cli import main

sys.exit(main())
