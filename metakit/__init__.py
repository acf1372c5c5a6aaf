"""metakit: meta-learned training aids (MFM, MLR-SNet, Meta-Weight-Net) on one look-ahead meta-step."""
from metakit.device import device

__version__ = "0.1.0"
__all__ = ["device", "__version__"]
