"""Load an untrusted `.keras` upload in a separate, resource-limited process, and keep it only if the app can use it.

`install_model(data, models_dir, ...)`, called in the web process:

1. `model_safety.check_archive` on the bytes (no deserialisation: members, sizes, the config's allowlist);
2. a child process (`python -m explainers.model_sandbox`) that first limits itself (address space with
   `resource.setrlimit(RLIMIT_AS)`: what the interpreter with TensorFlow imported uses plus a budget; CPU seconds;
   the size of files it may write; no core dumps), then re-checks the archive, loads it with
   `keras.saving.load_model(..., safe_mode=True, compile=False)`, builds the `SegmentationAdapter` (logits and conv
   layers found, class names checked), runs a prediction on a test image and saves the model again with Keras;
   the parent also enforces a wall-clock timeout and kills the child past it;
3. the re-saved file is checked again and moved to `models_dir/<sha256>.keras`, the trusted location the app loads
   models from.

Only the child ever deserialises the upload. Its verdict comes back as one JSON line on stdout.

An `.onnx` upload (`kind="onnx"`) takes the same path with `onnx_safety.check_onnx` in place of `check_archive` (no
external data, standard operators only, size caps, not damaged); the child loads it with `load_adapter` (graph
normalised, the onnx2torch conversion checked against onnxruntime, else black box), runs a test prediction and writes
the checked model back with the onnx library; it is stored as `models_dir/<sha256>.onnx`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from explainers.model_safety import ArchiveLimits, ArchiveRefused, check_archive
from explainers.onnx_safety import OnnxLimits, OnnxUploadRefused, check_onnx

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "SEGX-SANDBOX-RESULT "
MiB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Resources of the loading process."""

    memory_bytes: int = 2048 * MiB  # address space on top of the interpreter with TensorFlow imported
    cpu_seconds: int = 120
    wall_seconds: float = 180.0
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    onnx: OnnxLimits = field(default_factory=OnnxLimits)


@dataclass(frozen=True)
class InstalledModel:
    """A checked model in the trusted directory."""

    model_id: str  # sha256 of the trusted file
    path: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int] | None
    conv_layers: int


class ModelUploadRefused(ValueError):
    """The upload is not used; the message says why, for the user."""


def install_model(
    data: bytes,
    models_dir: str | Path,
    class_names: Sequence[str] | None = None,
    limits: SandboxLimits = SandboxLimits(),
    kind: str = "keras",
) -> InstalledModel:
    """Check, load (in a limited child process) and store an uploaded `.keras` (kind "keras") or `.onnx` (kind
    "onnx") model; ModelUploadRefused if not."""
    if kind not in SUFFIXES:
        raise ModelUploadRefused(f"Unknown model kind {kind!r}.")
    suffix = SUFFIXES[kind]
    try:
        _static_check(kind, data, limits)
    except (ArchiveRefused, OnnxUploadRefused) as err:
        raise ModelUploadRefused(str(err)) from None
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="segx-upload-", dir=models_dir) as work:
        source, checked = Path(work) / f"upload{suffix}", Path(work) / f"checked{suffix}"
        source.write_bytes(data)
        verdict = _run_child(source, checked, class_names, limits, kind)
        try:
            _static_check(kind, checked, limits)  # what our own code wrote must pass too
        except (ArchiveRefused, OnnxUploadRefused, OSError) as err:
            raise ModelUploadRefused(f"The re-saved model did not pass the checks: {err}") from None
        digest = hashlib.sha256(checked.read_bytes()).hexdigest()
        target = models_dir / f"{digest}{suffix}"
        if not target.exists():
            os.replace(checked, target)
    size = verdict.get("input_size")
    return InstalledModel(model_id=digest, path=str(target), class_names=tuple(verdict["class_names"]),
                          input_size=tuple(size) if size else None,
                          conv_layers=int(verdict["conv_layers"]))  # fmt: skip


SUFFIXES = {"keras": ".keras", "onnx": ".onnx"}


def _static_check(kind: str, source: bytes | Path, limits: SandboxLimits) -> None:
    if kind == "onnx":
        check_onnx(source, limits.onnx)
    else:
        check_archive(source, limits.archive)


def trusted_path(models_dir: str | Path, model_id: str) -> Path:
    """The stored file of `model_id` (a sha256 hex digest): `<id>.keras`, or `<id>.onnx` where that one is stored;
    ValueError for anything else."""
    if not isinstance(model_id, str) or len(model_id) != 64 or any(c not in "0123456789abcdef" for c in model_id):
        raise ValueError("Invalid model id.")
    onnx_path = Path(models_dir) / f"{model_id}.onnx"
    return onnx_path if onnx_path.is_file() else Path(models_dir) / f"{model_id}.keras"


def _run_child(
    source: Path, dest: Path, class_names: Sequence[str] | None, limits: SandboxLimits, kind: str = "keras"
) -> dict:
    spec = {"source": str(source), "dest": str(dest), "class_names": list(class_names) if class_names else None,
            "kind": kind, "onnx_max_bytes": limits.onnx.max_bytes, "onnx_max_nodes": limits.onnx.max_nodes,
            "memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
            "file_bytes": 4 * max(limits.archive.max_bytes, limits.onnx.max_bytes) + 64 * MiB,
            "max_bytes": limits.archive.max_bytes, "max_uncompressed": limits.archive.max_uncompressed}  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO_ROOT)}
    try:
        result = subprocess.run([sys.executable, "-m", "explainers.model_sandbox", json.dumps(spec)], cwd=REPO_ROOT,
                                env=env, capture_output=True, text=True, timeout=limits.wall_seconds)  # fmt: skip
    except subprocess.TimeoutExpired:
        seconds = limits.wall_seconds
        raise ModelUploadRefused(f"Loading the model took longer than {seconds:.0f} s; it was stopped.") from None
    verdicts = [line[len(RESULT_PREFIX):] for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    verdict = json.loads(verdicts[-1]) if verdicts else None
    if verdict is None:
        if result.returncode == -signal.SIGXCPU:
            raise ModelUploadRefused(f"Loading the model used more than {limits.cpu_seconds} s of CPU; it was stopped.")
        if result.returncode < 0:
            raise ModelUploadRefused(f"Loading the model was stopped by the sandbox (signal {-result.returncode}, "
                                     f"most likely its memory limit of {limits.memory_bytes / MiB:.0f} MiB "
                                     "above the interpreter's own).")  # fmt: skip
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ModelUploadRefused(f"Loading the model failed in the sandbox ({tail}).")
    if not verdict.get("ok"):
        raise ModelUploadRefused(str(verdict.get("message", "The model was refused.")))
    return verdict


# --------------------------------------------------------------------------------------------------- child process
def _limit(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    import resource

    with open("/proc/self/status") as status:
        vm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    address_space = vm_kib * 1024 + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(spec: dict) -> dict:
    # Imported before the limits are set (TensorFlow alone maps ~1.5 GB); nothing from the upload is read before them.
    import keras  # noqa: F401

    from explainers.model_loading import ModelRefused, load_adapter

    onnx_kind = spec.get("kind") == "onnx"
    if onnx_kind:  # the ONNX stack, imported before the limits too
        import onnxruntime  # noqa: F401

        from explainers.onnx_loading import import_onnx2torch

        import_onnx2torch()
    _limit(int(spec["memory_bytes"]), int(spec["cpu_seconds"]), int(spec["file_bytes"]))
    try:
        if onnx_kind:
            import onnx

            model = check_onnx(spec["source"], OnnxLimits(int(spec["onnx_max_bytes"]), int(spec["onnx_max_nodes"])))
            adapter = load_adapter(spec["source"], spec["class_names"], probe=True)
            onnx.save(model, spec["dest"])  # the parsed, checked model, serialised by the onnx library
        else:
            check_archive(spec["source"], ArchiveLimits(int(spec["max_bytes"]), int(spec["max_uncompressed"])))
            adapter = load_adapter(spec["source"], spec["class_names"], safe_mode=True, probe=True)
            adapter.model.save(spec["dest"])
    except (ArchiveRefused, OnnxUploadRefused, ModelRefused) as err:
        return {"ok": False, "message": str(err)}
    except MemoryError:
        return {"ok": False, "message": "Loading the model ran out of its memory budget."}
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        return {"ok": False, "message": f"The model could not be loaded: {first}"}
    return {"ok": True, "class_names": adapter.class_names, "input_size": adapter.input_size,
            "conv_layers": len(getattr(adapter, "conv_layers", []))}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Child entry point: `python -m explainers.model_sandbox '<json spec>'`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="JSON: source, dest, class_names, memory_bytes, cpu_seconds, file_bytes, ...")
    spec = json.loads(parser.parse_args(argv).spec)
    verdict = _child(spec)
    sys.stdout.write(RESULT_PREFIX + json.dumps(verdict) + "\n")
    sys.stdout.flush()
    if not verdict["ok"]:
        Path(spec["dest"]).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
