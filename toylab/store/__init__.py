"""What a run leaves on disk: atomic writes, the frames file and the run directory."""
