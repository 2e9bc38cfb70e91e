"""Keep shap's DeepExplainer from changing TensorFlow for the rest of the process.

shap's TensorFlow DeepExplainer (shap/explainers/_deep/deep_tf.py) computes DeepLIFT multipliers by patching
process-wide TensorFlow state while it runs:

- the gradient registry (``tensorflow.python.framework.ops._gradient_registry._registry``): it replaces the gradient
  function of every op it has a rule for, adds ``shap_<op>`` entries, and a ``TensorListReserve`` entry;
- ``tensorflow.python.eager.execute.record_gradient``, so that the tape records every op as ``shap_<op>``;
- ``gradients_util._IsBackpropagatable``.

It undoes the registry and ``_IsBackpropagatable`` in a ``finally``, but restores ``record_gradient`` only when the
model call succeeds. When an op has no rule (``Relu6`` in MobileNetV2, for example) the call fails with
"gradient registry has no entry for: shap_Relu6", ``record_gradient`` stays patched, and from then on every gradient
in the process (saliency, the CAMs, a plain ``tf.GradientTape``) fails with ``LookupError: gradient registry has no
entry for: shap_Conv2D``.

`isolated_deep_explainer()` snapshots all of that state before a DeepExplainer run and restores it afterwards,
whether the run succeeded or not. Because the patched registry is global while it is in place, a gradient computed
or a function first traced in another thread during the run would use shap's rules (and a traced function would keep
them). So the run also holds `GRADIENT_LOCK` exclusively, and every other attribution method holds it shared
(`explainers.base.Explainer.explain`): DeepSHAP runs never interleave with each other or with another method's
gradients (a Celery worker with the threads pool, and the web process's embedded job threads, run jobs
concurrently in one process). The lock is phase-fair (`SharedExclusiveLock`): a request of another method waits for
at most one DeepSHAP run, however many DeepSHAP jobs are queued behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


class SharedExclusiveLock:
    """A readers-writer lock: many shared holders or one exclusive holder. Phase-fair: a waiting exclusive request
    blocks new shared ones (so a DeepSHAP job is not starved by a stream of fast requests), and the shared requests
    that waited while an exclusive section ran go in before the next exclusive one (so a fast request waits for at
    most one exclusive section: the one running, or the one that asked before it, however many more are queued).
    Re-entrant for shared holders and for the exclusive holder; asking for exclusive while holding shared raises (it
    would wait for itself)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared: dict[int, int] = {}  # thread id -> depth
        self._owner: int | None = None
        self._owner_depth = 0
        self._waiting_exclusive = 0
        self._phase = 0  # exclusive sections ended so far
        self._waiting_shared: dict[int, int] = {}  # phase at arrival -> shared requests waiting since then

    def _shared_admitted(self) -> bool:
        """Shared requests still waiting that arrived before the last exclusive section ended (they go next)."""
        return any(count for phase, count in self._waiting_shared.items() if phase < self._phase)

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me or me in self._shared:
                self._shared[me] = self._shared.get(me, 0) + 1
            else:
                arrived = self._phase
                self._waiting_shared[arrived] = self._waiting_shared.get(arrived, 0) + 1
                try:
                    self._condition.wait_for(
                        lambda: self._owner is None and (not self._waiting_exclusive or self._phase > arrived)
                    )
                finally:
                    self._waiting_shared[arrived] -= 1
                    if not self._waiting_shared[arrived]:
                        del self._waiting_shared[arrived]
                        self._condition.notify_all()  # an exclusive request may be waiting for the admitted ones
                self._shared[me] = 1
        try:
            yield
        finally:
            with self._condition:
                self._shared[me] -= 1
                if not self._shared[me]:
                    del self._shared[me]
                    self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._owner_depth += 1
            else:
                if me in self._shared:
                    raise RuntimeError("An exclusive TensorFlow section was asked for inside a shared one.")
                self._waiting_exclusive += 1
                try:
                    self._condition.wait_for(
                        lambda: self._owner is None and not self._shared and not self._shared_admitted()
                    )
                finally:
                    self._waiting_exclusive -= 1
                self._owner, self._owner_depth = me, 1
        try:
            yield
        finally:
            with self._condition:
                self._owner_depth -= 1
                if not self._owner_depth:
                    self._owner = None
                    self._phase += 1
                    self._condition.notify_all()


GRADIENT_LOCK = SharedExclusiveLock()
# Gradient-registry names TensorFlow itself adds, one per traced `tf.custom_gradient` function (unique ids).
TF_PER_TRACE_PREFIX = "CustomGradient-"


@dataclass
class TFGradientState:
    """A copy of the TensorFlow state shap's DeepExplainer patches."""

    registry: dict[str, dict[str, Any]]
    record_gradient: Any
    is_backpropagatable: dict[str, Any]  # gradients_impl / gradients_util module name -> _IsBackpropagatable

    @classmethod
    def capture(cls) -> TFGradientState:
        from tensorflow.python.eager import execute
        from tensorflow.python.framework import ops

        return cls(
            registry={name: dict(entry) for name, entry in ops._gradient_registry._registry.items()},
            record_gradient=execute.record_gradient,
            is_backpropagatable={
                module.__name__: module._IsBackpropagatable
                for module in _gradient_modules()
                if hasattr(module, "_IsBackpropagatable")
            },
        )

    def restore(self) -> None:
        """Put every captured entry back (same entry objects, their fields reset), drop entries added since (but the
        `CustomGradient-<uid>` ones TensorFlow registers itself each time a `tf.custom_gradient` function is traced,
        e.g. Keras's swish in EfficientNet: a function traced meanwhile still needs them)."""
        from tensorflow.python.eager import execute
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
        for name in set(registry) - set(self.registry):
            if not name.startswith(TF_PER_TRACE_PREFIX):
                del registry[name]
        for name, entry in self.registry.items():
            if name in registry:
                registry[name].clear()
                registry[name].update(entry)
            else:
                registry[name] = dict(entry)
        execute.record_gradient = self.record_gradient
        for module in _gradient_modules():
            if module.__name__ in self.is_backpropagatable:
                module._IsBackpropagatable = self.is_backpropagatable[module.__name__]

    def differences(self) -> list[str]:
        """What differs now from the captured state (empty: nothing), for tests and logs."""
        now = TFGradientState.capture()
        added = {name for name in set(now.registry) - set(self.registry) if not name.startswith(TF_PER_TRACE_PREFIX)}
        found = [f"registry entry {name!r} added" for name in added]
        found += [f"registry entry {name!r} removed" for name in set(self.registry) - set(now.registry)]
        found += [
            f"registry entry {name!r} changed"
            for name in set(now.registry) & set(self.registry)
            if now.registry[name] != self.registry[name]
        ]
        if now.record_gradient is not self.record_gradient:
            found.append("tensorflow.python.eager.execute.record_gradient replaced")
        for module, check in self.is_backpropagatable.items():
            if now.is_backpropagatable.get(module) is not check:
                found.append(f"{module}._IsBackpropagatable replaced")
        return found


def _gradient_modules() -> tuple[Any, ...]:
    from tensorflow.python.ops import gradients_impl, gradients_util

    return gradients_impl, gradients_util


@contextmanager
def isolated_deep_explainer() -> Iterator[None]:
    """Run shap's TensorFlow DeepExplainer inside: exclusive `GRADIENT_LOCK`, and TensorFlow's gradient state as it
    was before, afterwards, failed or not."""
    with GRADIENT_LOCK.exclusive():
        state = TFGradientState.capture()
        try:
            yield
        finally:
            state.restore()
