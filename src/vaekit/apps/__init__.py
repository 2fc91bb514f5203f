"""Applications: front ends over the same models and objectives (estimators, completion, synthetic tables)."""
