"""``python -m salt.data.prepare NAME --src RAW --dst ROOT [--overwrite] ...``"""

import sys

from salt.data.prepare.cli import main

sys.exit(main())
