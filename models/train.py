"""Train the demo U-Net on procedural mushrooms, deterministically, on CPU.

``python -m models.train [--epochs E] [--train-size N] [--seed S] [--out PATH]`` generates ``N`` training images
from ``--seed`` (default ``models.mushrooms.TRAIN_SEED``) and 100 validation images from ``VAL_SEED``, trains
``models.unet.build_unet`` with Adam (cosine-decayed learning rate) on cross-entropy + soft Dice (the Dice term keeps
the small parts - gills, ring, volva - from lagging), with random horizontal flips, then scores the model on the
held-out ``EVAL_SEED`` images (``models.evaluate``) and writes the ``.keras`` file (no optimizer state) and a
``.metrics.json`` next to it.  Determinism: ``keras.utils.set_random_seed`` + ``enable_op_determinism`` + a single
inter-op thread, so a re-run on the same software stack reproduces the weights bit for bit (checked: the committed
model is ``python -m models.train`` with its defaults, ~12 min on 2 lightly shared cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.evaluate import confusion, evaluate_model, format_report, iou_from_confusion, predict_labels
from models.mushrooms import CLASS_NAMES, EVAL_SEED, RESERVED_SEEDS, TRAIN_SEED, VAL_SEED, generate_dataset
from models.unet import DEFAULT_FILTERS

DEFAULT_EPOCHS = 7
DEFAULT_TRAIN_SIZE = 3000
DEFAULT_BATCH = 16
DEFAULT_LR = 3e-3
DICE_WEIGHT = 1.0
N_VAL = 100


def _loss_fn(num_classes: int):
    import tensorflow as tf

    def loss(y_true, logits):
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits))
        probs = tf.nn.softmax(logits)
        onehot = tf.one_hot(y_true, num_classes, dtype=probs.dtype)
        inter = tf.reduce_sum(onehot * probs, axis=(0, 1, 2))
        denom = tf.reduce_sum(onehot + probs, axis=(0, 1, 2))
        dice = (2.0 * inter + 1.0) / (denom + 1.0)
        return ce + DICE_WEIGHT * (1.0 - tf.reduce_mean(dice))

    return loss


def train(epochs: int = DEFAULT_EPOCHS, train_size: int = DEFAULT_TRAIN_SIZE, seed: int = TRAIN_SEED,
          out: Path | None = None, batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR,
          filters: tuple[int, int, int, int] = DEFAULT_FILTERS) -> dict:
    """Train, evaluate on the held-out set and save; returns the metrics dictionary that is written to JSON."""
    if seed in RESERVED_SEEDS or seed == VAL_SEED:
        raise ValueError(f"seed {seed} is reserved ({RESERVED_SEEDS.get(seed, 'validation')}); pick another")
    from models import DEMO_MODEL_PATH

    out = Path(out) if out is not None else DEMO_MODEL_PATH
    import keras
    import tensorflow as tf

    from models.unet import build_unet

    # Determinism on CPU: seeded init + deterministic kernels, and one inter-op thread (with concurrent ops sharing
    # the pool, some kernels' reduction order - hence the weights - varies from run to run at batch 16).
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), os.getloadavg()

    t0 = time.perf_counter()
    x_train, y_train = generate_dataset(train_size, seed)
    x_val, y_val = generate_dataset(N_VAL, VAL_SEED)
    gen_time = time.perf_counter() - t0
    print(f"generated {train_size} training + {N_VAL} validation images in {gen_time:.1f} s")

    model = build_unet(x_train.shape[1:], len(CLASS_NAMES), filters=filters)
    train_model = keras.Model(model.input, model.get_layer("logits").output)  # shares the weights
    steps_per_epoch = train_size // batch_size
    total = steps_per_epoch * epochs
    warmup = min(200, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(lr * 0.1, total - warmup, alpha=0.01, warmup_target=lr,
                                                      warmup_steps=warmup)
    opt = keras.optimizers.Adam(schedule)
    loss_fn = _loss_fn(len(CLASS_NAMES))

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, train_model(x, training=True))
        grads = tape.gradient(loss, train_model.trainable_variables)
        opt.apply_gradients(zip(grads, train_model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng([seed, 7])
    history = []
    t_fit = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(train_size)
        flips = rng.random(train_size) < 0.5
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{epochs}", unit="batch", dynamic_ncols=True)
        for step in bar:
            idx = np.sort(order[step * batch_size:(step + 1) * batch_size])
            x, y = x_train[idx], y_train[idx]
            f = flips[idx]
            x[f], y[f] = x[f, :, ::-1], y[f, :, ::-1]
            loss = float(train_step(tf.constant(x, tf.float32) / 255.0, tf.constant(y, tf.int32)))
            losses.append(loss)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        val_iou = iou_from_confusion(confusion(predict_labels(model, x_val), y_val))
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 5),
                        "val_mean_iou": round(float(np.nanmean(val_iou)), 4),
                        "val_per_class_iou": [round(float(v), 4) for v in val_iou],
                        "elapsed_s": round(time.perf_counter() - t_start, 1)})
        bar.write(f"epoch {epoch}: loss {history[-1]['loss']:.4f}  val mean IoU {history[-1]['val_mean_iou']:.4f}  "
                  + " ".join(f"{n}={v:.3f}" for n, v in zip(CLASS_NAMES, val_iou, strict=True)))
    fit_time = time.perf_counter() - t_fit
    train_time = time.perf_counter() - t_start
    cpu_time, load_end = time.process_time() - cpu_start, os.getloadavg()

    result = evaluate_model(model, seed=EVAL_SEED)
    print(format_report(result))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    metrics = {
        "model": out.name,
        "classes": list(CLASS_NAMES),
        "input_shape": list(model.input_shape[1:]),
        "eval": result,
        "per_class_iou": result["per_class_iou"],
        "mean_iou": result["mean_iou"],
        "params": int(model.count_params()),
        "filters": list(filters),
        "file_size_bytes": out.stat().st_size,
        "epochs": epochs,
        "train_size": train_size,
        "batch_size": batch_size,
        "learning_rate": lr,
        "loss": f"cross-entropy + {DICE_WEIGHT} * (1 - mean soft Dice)",
        "seeds": {"train": seed, "validation": VAL_SEED, "eval": EVAL_SEED},
        "data_generation_s": round(gen_time, 1),
        "fit_s": round(fit_time, 1),
        "train_time_s": round(train_time, 1),
        "train_cpu_s": round(cpu_time, 1),
        "load_average_1_5_15min": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in load_end]},
        "cpu_count": os.cpu_count(),
        "history": history,
        "command": f"python -m models.train --epochs {epochs} --train-size {train_size} --seed {seed}",
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
    }
    out.with_name(out.name.removesuffix(".keras") + ".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB), training took {train_time / 60:.1f} min")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="default %(default)s")
    p.add_argument("--train-size", type=int, default=DEFAULT_TRAIN_SIZE, help="generated training images")
    p.add_argument("--seed", type=int, default=TRAIN_SEED, help="data + weight seed (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="output .keras path (default models/mushroom_unet.keras)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="default %(default)s")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="peak learning rate (default %(default)s)")
    args = p.parse_args(argv)
    return train(args.epochs, args.train_size, args.seed, args.out, args.batch_size, args.lr)


if __name__ == "__main__":
    main()
