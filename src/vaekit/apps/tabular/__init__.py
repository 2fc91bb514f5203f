"""Synthetic tables: the TabularVAE front end, its model, the row transformer and column types."""
