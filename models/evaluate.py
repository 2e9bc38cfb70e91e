"""Held-out evaluation of the demo model: per-class IoU and mean IoU on freshly generated mushrooms.

``python -m models.evaluate [--model PATH] [--n 200] [--seed S]``.  The images are drawn with
``models.mushrooms.EVAL_SEED`` by default, a seed that ``models.train`` refuses to train or validate on.  IoU is
accumulated over the whole set (intersection and union summed over all images, per class), and the mean IoU is the
unweighted mean over the six classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.mushrooms import CLASS_NAMES, EVAL_SEED, generate_dataset

DEFAULT_N = 200


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = truth, columns = prediction."""
    idx = truth.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def predict_labels(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Argmax class ids for uint8 images (N, H, W, 3)."""
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].astype(np.float32) / 255.0
        out.append(np.argmax(np.asarray(model.predict_on_batch(x)), axis=-1).astype(np.uint8))
    return np.concatenate(out)


def evaluate_model(model, n: int = DEFAULT_N, seed: int = EVAL_SEED, size: int = 128) -> dict:
    """Generate ``n`` images with ``seed`` and score ``model`` on them; returns per-class and mean IoU."""
    images, masks = generate_dataset(n, seed, size)
    cm = confusion(predict_labels(model, images), masks)
    iou = iou_from_confusion(cm)
    return {
        "n_images": n,
        "seed": seed,
        "per_class_iou": {name: round(float(v), 4) for name, v in zip(CLASS_NAMES, iou, strict=True)},
        "mean_iou": round(float(np.nanmean(iou)), 4),
        "pixel_accuracy": round(float(np.diag(cm).sum() / cm.sum()), 4),
    }


def format_report(result: dict) -> str:
    lines = [f"{result['n_images']} held-out images, seed {result['seed']}"]
    lines += [f"  {name:<11s} IoU {v:.4f}" for name, v in result["per_class_iou"].items()]
    lines.append(f"  {'mean':<11s} IoU {result['mean_iou']:.4f}   (pixel accuracy {result['pixel_accuracy']:.4f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from models import DEMO_MODEL_PATH, load_demo_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEMO_MODEL_PATH, help="a .keras file (default: the demo model)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="number of generated images (default %(default)s)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="generator seed (default EVAL_SEED=%(default)s)")
    args = p.parse_args(argv)
    result = evaluate_model(load_demo_model(args.model), args.n, args.seed)
    print(format_report(result))
    return result


if __name__ == "__main__":
    main()
