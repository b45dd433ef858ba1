"""Which vessels, by width, evaluated runs find: thin-centreline recall and a figure.

    python eval.py ckpt=<run A> ... eval.masks=true hydra.run.dir=<A eval>
    python eval.py ckpt=<run B> ... eval.masks=true hydra.run.dir=<B eval>
    python scripts/thin_vessels.py <A eval> <B eval> --labels "resized 256 px,patch mode" --out thin.png

Prints each run's recall of the annotation's centreline on thin vessels (<= --max-width px wide) and on the
others, and draws the first --cases images: thin centreline found (white) or missed (red) over each prediction.
"""

import sys

from salt.results.thin_vessels import main

if __name__ == "__main__":
    sys.exit(main())
