"""Data: sources, long-tail/noise/meta splits, and device-resident batches.

Importing this package registers every built-in dataset (`metakit.data.sources` imports each
loader file; `register_dataset` adds one).
"""
from metakit.data.batches import Batch, Batches
from metakit.data.longtail import longtail_counts, shot_group
from metakit.data.noise import corrupt_labels, transition_matrix
from metakit.data.registry import dataset_names, get_dataset, register_dataset
from metakit.data.sources import DATASETS, Source, load_source
from metakit.data.splits import Split, SplitSpec, load_split, make_split, save_split

__all__ = ["Batch", "Batches", "DATASETS", "Source", "Split", "SplitSpec", "corrupt_labels", "dataset_names",
           "get_dataset", "load_source", "load_split", "longtail_counts", "make_split", "register_dataset",
           "save_split", "shot_group", "transition_matrix"]
