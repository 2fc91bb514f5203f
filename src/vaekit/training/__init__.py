"""Training: the loop, the one step, runtime settings and the distributed wrap."""
