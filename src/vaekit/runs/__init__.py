"""Run folders and whole jobs: the one run format, train/resume/follow/evaluate, sweeps and pictures."""
