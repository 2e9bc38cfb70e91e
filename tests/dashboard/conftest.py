"""Fixtures for the dashboard unit tests: a tiny Keras U-Net saved to disk, its config, store and a session."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.config import AppConfig
from dashboard.state.store import DiskStore, StateStore, new_session_id

SIZE = 32
CLASS_NAMES = ("background", "cap", "stem")


def build_tiny_unet(size: int = SIZE, classes: int = len(CLASS_NAMES), seed: int = 0):
    """A small encoder-decoder with a skip connection and softmax output; random (non-zero) biases."""
    import keras

    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=0.2, seed=seed)
    inputs = keras.Input((size, size, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=init, name="enc_conv")(inputs)
    b = keras.layers.MaxPooling2D()(a)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=init, name="mid_conv")(b)
    c = keras.layers.Concatenate()([a, keras.layers.UpSampling2D()(b)])
    c = keras.layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=init, name="dec_conv")(c)
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax", bias_initializer=init, name="logits")(c)
    return keras.Model(inputs, outputs, name="tiny_unet")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_tiny_unet().save(path)
    return str(path)


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from PIL import Image

    folder = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"sample_{k}.png")
    return str(folder)


@pytest.fixture(scope="session")
def config(tiny_model_path: str, samples_dir: str, tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    return AppConfig(
        model_path=tiny_model_path,
        class_names=CLASS_NAMES,
        state_dir=str(tmp_path_factory.mktemp("state")),
        samples_dir=samples_dir,
        max_upload_bytes=10 * 1024 * 1024,  # a small cap the upload battery's "too large" case can exceed cheaply
    )


@pytest.fixture(scope="session")
def adapter(config: AppConfig):
    from dashboard.state.resources import get_adapter

    return get_adapter(config)


@pytest.fixture()
def store(tmp_path) -> StateStore:
    store = DiskStore(str(tmp_path / "state"))
    yield store
    store.close()


@pytest.fixture()
def session() -> str:
    return new_session_id()


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture()
def shared(config: AppConfig) -> StateStore:
    """The store a job process opens from the config (jobs run in-process in these tests)."""
    from dashboard.state.resources import get_store

    return get_store(config)


@pytest.fixture(scope="session")
def fetch_export(config: AppConfig):
    """Fetch an export ticket's zip through the real streaming route (`dashboard.trust.download`) of a Flask server;
    returns the zip's bytes after checking the status and the attachment's file name."""
    from flask import Flask

    from dashboard.trust.download import register_export_route

    server = Flask("export-test")
    register_export_route(server, config)
    client = server.test_client()

    def fetch(ticket: dict) -> bytes:
        response = client.get("/" + ticket["url"])
        assert response.status_code == 200, response.data[:200]
        assert response.headers["Content-Disposition"] == f'attachment; filename="{ticket["filename"]}"'
        assert response.is_streamed
        return response.data

    return fetch
