"""Write the dozen sample mushrooms the app and the tests use.

``python -m models.make_samples [--out DIR]`` writes ``mushroom_01.png`` ... ``mushroom_12.png`` (RGB, 128x128)
into ``assets/samples/``, their ground-truth class-id masks (uint8, ids as in ``CLASS_NAMES``) as
``assets/samples/ground_truth/mushroom_NN.png`` and an ``index.json`` describing each (pose, visible classes).
Samples come from ``SAMPLES_SEED``, distinct from the training, validation and evaluation seeds.  Each of the twelve
slots asks for a pose and which parts must (or must not) be visible; the first candidate
``np.random.default_rng([SAMPLES_SEED, slot, k])``, k = 0, 1, ... that satisfies it is taken, so the set is
deterministic and varied (every visible part has at least ``MIN_PART_PIXELS`` pixels and the mushroom does
not touch the border): side views from below with gills, level and oblique views, top views where only the cap
is visible, species with and without ring and volva.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from models.mushrooms import CLASS_NAMES, SAMPLES_SEED, generate_sample

MIN_PART_PIXELS = 40

# (pose, classes that must be visible, classes that must not be visible, description)
SLOTS: tuple[tuple[str, set[str], set[str], str], ...] = (
    ("below", {"gills", "ring", "volva"}, set(), "side view from below: gills, ring and volva visible"),
    ("below", {"gills"}, {"ring", "volva"}, "side view from below, a species without ring or volva"),
    ("top", {"cap"}, set(), "straight from above: only the cap, gills hidden"),
    ("level", {"ring", "volva"}, {"gills"}, "level side view: gills hidden under the cap"),
    ("oblique", {"stem"}, {"gills"}, "oblique view from above: cap top surface, gills hidden"),
    ("below", {"gills", "ring"}, {"volva"}, "side view from below with a ring, no volva"),
    ("below", {"gills", "volva"}, {"ring"}, "side view from below with a volva, no ring"),
    ("level", {"stem"}, {"ring", "volva", "gills"}, "level side view, plain stem"),
    ("top", {"cap"}, set(), "straight from above, another cap"),
    ("oblique", {"volva"}, {"gills"}, "oblique view with the volva showing"),
    ("below", {"gills", "ring", "volva"}, set(), "side view from below: all six classes"),
    ("level", {"ring"}, {"gills"}, "level side view with a ring"),
)


def make_samples(out: Path | None = None, seed: int = SAMPLES_SEED, size: int = 128) -> list[dict]:
    """Write the samples, masks and index; returns the index entries."""
    from models import SAMPLES_DIR

    out = Path(out) if out is not None else SAMPLES_DIR
    (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    index = []
    for slot, (pose, need, forbid, desc) in enumerate(SLOTS, start=1):
        for k in range(10_000):
            image, mask = generate_sample(np.random.default_rng([seed, slot, k]), size, pose=pose)
            present = {CLASS_NAMES[c] for c in np.unique(mask)}
            # every visible part gets a fair number of pixels: no slivers in the showcase
            counts = np.bincount(mask.ravel(), minlength=len(CLASS_NAMES))
            big_enough = all(counts[CLASS_NAMES.index(c)] >= MIN_PART_PIXELS for c in present)
            border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
            in_frame = not border.any()  # the whole mushroom is inside the picture
            if need <= present and not (forbid & present) and big_enough and in_frame:
                break
        else:  # pragma: no cover - the generator satisfies every slot within a few tries
            raise RuntimeError(f"no sample found for slot {slot}: {desc}")
        name = f"mushroom_{slot:02d}.png"
        Image.fromarray(image).save(out / name)
        Image.fromarray(mask).save(out / "ground_truth" / name)
        index.append({"file": name, "pose": pose, "description": desc, "rng": [seed, slot, k],
                      "classes": [c for c in CLASS_NAMES if c in present]})
    (out / "index.json").write_text(json.dumps({"classes": list(CLASS_NAMES), "samples": index}, indent=2) + "\n")
    return index


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="output directory (default assets/samples)")
    args = p.parse_args(argv)
    for entry in make_samples(args.out):
        print(f"{entry['file']}: {entry['pose']:<8s} {', '.join(entry['classes'])}")


if __name__ == "__main__":
    main()
