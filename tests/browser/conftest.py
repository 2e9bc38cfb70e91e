"""Browser-test set-up: the app under test and a guard that a missing Chromium fails in CI instead of skipping.

The tests drive the real app (`dashboard.factory.create_app`) on the bundled demo model in Debian's headless Chromium
through `dash_duo` (run with `pytest --headless`). `SEGX_TEST_MODEL` (a .keras file) with `SEGX_TEST_CLASS_NAMES` and
`SEGX_TEST_SAMPLES` points them at another model instead.
"""

from __future__ import annotations

import os
import shutil

import pytest

from dashboard.config import AppConfig

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _browser_missing() -> str | None:
    if not shutil.which("chromedriver"):
        return "chromedriver is not on PATH (apt-get install chromium-driver)"
    if not any(shutil.which(name) for name in BROWSERS) and "DASH_TEST_CHROMEPATH" not in os.environ:
        return "no Chromium/Chrome binary found (apt-get install chromium)"
    return None


@pytest.fixture(autouse=True)
def _require_browser() -> None:
    """Without a browser: skip locally, but fail in CI (CI=true), where the browser tests must run."""
    reason = _browser_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    """One configuration for the whole session: Dash keys background jobs by function source, so every app built
    in this process must share the same config."""
    state_dir = str(tmp_path_factory.mktemp("browser-state"))
    model = os.environ.get("SEGX_TEST_MODEL")
    if model:
        names = os.environ.get("SEGX_TEST_CLASS_NAMES")
        return AppConfig(model_path=model, class_names=tuple(names.split(",")) if names else None,
                         state_dir=state_dir, samples_dir=os.environ.get("SEGX_TEST_SAMPLES"))  # fmt: skip
    from dashboard.factory import default_samples_dir

    return AppConfig(model_path=None, state_dir=state_dir, samples_dir=default_samples_dir(None))


@pytest.fixture()
def segx_app(browser_config: AppConfig):
    from dashboard.factory import create_app

    return create_app(config=browser_config)
