"""toylab: fit flat Discrete Distribution Networks to 2D targets and watch them learn."""

__version__ = "0.1.0"
