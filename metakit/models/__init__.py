"""Classifiers by name: ``build_model("resnet32", num_classes=10)``; see `nets` for the architectures.

Importing this package registers every built-in model: each model file registers its builders
(`register_model`), and the import order below is the order of ``MODELS``.
"""
from metakit.models import nets, nets1d, mobile, imagenet  # noqa: F401,I001  each registers its models
from metakit.models.nets import NamedStages
from metakit.models.registry import build_model, count_parameters, get_model, model_names, register_model

# the registry once every built-in model is in (`model_names()` also lists models registered later)
MODELS = model_names()
SIGNAL_MODELS = model_names("signals")   # take (C, L) signals; the MLP takes any shape, the rest images
WIDTH_MODELS = model_names(sized=True)   # take a width: first-stage channels (32), the MLP's hidden units (128)

__all__ = ["MODELS", "SIGNAL_MODELS", "WIDTH_MODELS", "NamedStages", "build_model", "count_parameters", "get_model",
           "model_names", "register_model"]
