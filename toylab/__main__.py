"""`python -m toylab` runs the CLI."""

import sys

from toylab.cli import console

sys.exit(console())
