"""Classifiers by name: ``build_model("resnet32", num_classes=10)``; see `nets` for the architectures."""
from metakit.models.nets import NamedStages
from metakit.models.registry import MODELS, SIGNAL_MODELS, WIDTH_MODELS, build_model, count_parameters

__all__ = ["MODELS", "SIGNAL_MODELS", "WIDTH_MODELS", "NamedStages", "build_model", "count_parameters"]
