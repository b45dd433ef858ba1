"""The synthetic generator's looks next to a real fundus photograph: one sample of each, image over mask.

    python scripts/show_looks.py [--out docs/figures/synthetic_looks.png] [--size 256] [--seed 0]

The real photograph is scikit-image's ``skimage.data.retina()`` (shipped in its wheel; no mask exists for it).
"""

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from salt.data.synthetic import make_style
from salt.data.vessels import LOOKS, render
from salt.results.real_image import retina_image


def main() -> int:
    parser = argparse.ArgumentParser(prog="show_looks.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("docs/figures/synthetic_looks.png"), help="figure path"
    )
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    args = parser.parse_args()
    fig = Figure(figsize=(2.6 * (len(LOOKS) + 1), 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(LOOKS) + 1, squeeze=False)
    for j, look in enumerate(LOOKS):
        image, mask, _ = render(np.random.default_rng([args.seed, 0]), args.size, make_style(look=look))
        axes[0][j].imshow(image)
        axes[0][j].set_title(f"synthetic {look}", fontsize="small")
        axes[1][j].imshow(mask, cmap="gray")
    axes[0][-1].imshow(retina_image(args.size))
    axes[0][-1].set_title("real fundus (skimage.data.retina)", fontsize="small")
    axes[1][-1].text(0.5, 0.5, "no ground truth", ha="center", va="center", transform=axes[1][-1].transAxes)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100)
    # A 256-colour palette keeps the committed figure small.
    Image.open(buffer).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
