"""SALT: parameter-efficient fine-tuning of the Segment Anything Model for medical segmentation."""

__version__ = "0.1.0"
