"""`python -m toylab` runs the CLI (a Ctrl-C while the heavy modules load exits quietly)."""

import sys

try:
    from toylab.cli import main
except KeyboardInterrupt:
    print("toylab: interrupted while starting", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
