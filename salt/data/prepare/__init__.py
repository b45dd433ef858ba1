"""Converters from official release layouts to the canonical layout (``python -m salt.data.prepare``)."""

from salt.data.prepare.arcade import convert_arcade
from salt.data.prepare.drive import convert_drive
from salt.data.prepare.folder import PRESETS, FolderSpec, convert_folder, preset_spec

__all__ = ["PRESETS", "FolderSpec", "convert_arcade", "convert_drive", "convert_folder", "preset_spec"]
