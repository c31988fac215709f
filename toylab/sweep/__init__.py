"""`toylab sweep`: a grid of runs (fixed options x axes) on a process pool or a Ray cluster.

    spec = load_spec("sweep.toml")          # every cell validated, nothing written
    outcome = run_sweep(spec, Path("out"))  # cells/, results.csv, summary.png/.pdf/.md

See spec.py for the spec format, runner.py for the output folder, executors.py for where
cells run and how their run directories come back.
"""

from toylab.sweep.runner import Outcome, run_sweep
from toylab.sweep.spec import SpecError, SweepSpec, load_spec, parse_spec

__all__ = ["Outcome", "SpecError", "SweepSpec", "load_spec", "parse_spec", "run_sweep"]
