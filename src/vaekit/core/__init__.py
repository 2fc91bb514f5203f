"""The maths: distributions, networks, model kinds and objectives. No I/O, no optimisers, no files."""
