"""Data: the dataset registry, downloads with checksums, and readers for tables and images.

``load_dataset(cfg)`` turns a :class:`~vaekit.config.DataConfig` into :class:`DataSplits`
(float32 train/val/test tensors plus labels and metadata); ``load_array(path)`` reads new
data for a trained model, applying the stored table preprocessing.
"""

from .registry import DataSplits, data_dir, load_array, load_dataset, split_indices

__all__ = ["DataSplits", "data_dir", "load_array", "load_dataset", "split_indices"]
