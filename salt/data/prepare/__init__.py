"""Converters from official release layouts to the canonical layout (``python -m salt.data.prepare``).

Each converter is a :class:`Converter` built from ``configs/prepare/<name>.yaml``; :func:`load_converter` builds
one by name, :func:`converter_names` lists them.
"""

from salt.data.prepare.arcade import convert_arcade
from salt.data.prepare.base import Converter
from salt.data.prepare.cli import converter_names, load_converter
from salt.data.prepare.dias import convert_dias
from salt.data.prepare.drive import convert_drive
from salt.data.prepare.folder import FolderSpec, convert_folder

__all__ = [
    "Converter",
    "FolderSpec",
    "convert_arcade",
    "convert_dias",
    "convert_drive",
    "convert_folder",
    "converter_names",
    "load_converter",
]
