"""Traditional segmentation baselines of the paper's Table 1, trained from scratch at full size.

Each network is a config file, ``configs/model/<name>.yaml``: its ``_target_`` is :class:`ClassicSegmenter`,
whose ``net`` is the library class (``net._target_``: MONAI's ``UNet``, segmentation-models-pytorch's
``Segformer``, :class:`SegNet` ...) with its architecture settings.
"""

from salt.classic.nets import regunet, unetr
from salt.classic.segmenter import ClassicSegmenter
from salt.classic.segnet import SegNet

__all__ = ["ClassicSegmenter", "SegNet", "regunet", "unetr"]
