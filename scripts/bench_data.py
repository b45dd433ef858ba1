"""Loading throughput of ``VesselDataset`` at the model resolution, with and without augmentation.

    python scripts/bench_data.py                      # synthetic 584 px images -> 512 px, in a temp folder
    python scripts/bench_data.py --root data/drive    # a prepared data set
    python scripts/bench_data.py --workers 4 --batch-size 8

Prints images/s for the first epoch (decode + resize, filling the cache), then for cached epochs without
and with the paper's augmentation. With ``--workers N`` the same epochs run through a DataLoader (each
worker keeps its own cache, so the first epoch decodes in every worker).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from salt.data import VesselDataset, augment_settings
from salt.data.synthetic import generate, make_style


def _epoch(ds: VesselDataset, loader: DataLoader | None) -> float:
    """Seconds to produce every item of ``ds`` once."""
    start = time.perf_counter()
    if loader is None:
        for i in range(len(ds)):
            ds[i]
    else:
        for _ in loader:
            pass
    return time.perf_counter() - start


def measure(
    root: Path, split: str, size: int, epochs: int, workers: int, batch_size: int
) -> dict[str, float]:
    """Images/s: ``first_epoch`` (decoding), ``cached`` and ``cached_augmented`` (best of ``epochs``)."""
    rates = {}
    for name, augment in (("plain", None), ("augmented", augment_settings())):
        ds = VesselDataset(root, split, img_size=size, augment=augment)
        loader = None
        if workers > 0:
            loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, persistent_workers=True)
        first = _epoch(ds, loader)
        if name == "plain":
            rates["first_epoch"] = len(ds) / first
        best = min(_epoch(ds, loader) for _ in range(epochs))
        rates["cached" if name == "plain" else "cached_augmented"] = len(ds) / best
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="prepared data set (default: a temporary synthetic one)")
    parser.add_argument("--split", default="train", help="split to read (default train)")
    parser.add_argument("--size", type=int, default=512, help="model input side (default 512)")
    parser.add_argument("--n", type=int, default=32, help="synthetic images to generate (default 32)")
    parser.add_argument("--source-size", type=int, default=584, help="synthetic image side (default 584)")
    parser.add_argument("--epochs", type=int, default=3, help="cached epochs timed, best kept (default 3)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers; 0 = direct indexing")
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size with --workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "synthetic"
            generate(root, args.n, args.source_size, seed=0, style=make_style())
        rates = measure(root, args.split, args.size, args.epochs, args.workers, args.batch_size)
    source = root if args.root else f"temporary synthetic set of {args.n} images of {args.source_size} px"
    print(f"data: {source} (split {args.split}), model input {args.size} px, workers {args.workers}")
    print(f"  first epoch (decode + resize):  {rates['first_epoch']:8.1f} images/s")
    print(f"  cached, no augmentation:        {rates['cached']:8.1f} images/s")
    print(f"  cached, with augmentation:      {rates['cached_augmented']:8.1f} images/s")
    print(json.dumps({k: round(v, 1) for k, v in rates.items()}))


if __name__ == "__main__":
    main()
