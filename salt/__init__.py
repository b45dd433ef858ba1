"""SALT: parameter-efficient fine-tuning of the Segment Anything Model for medical segmentation."""

__version__ = "0.1.0"

from pathlib import Path

# The Hydra config folder (configs/ beside the package): the one place modules find their config groups.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
