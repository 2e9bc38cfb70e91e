"""Server-side state (dashboard.state.store): per-session keys, content hashes, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dashboard.state.store import DiskStore, check_session, content_key, new_session_id


def test_put_get_round_trip(store, session):
    array = np.arange(12).reshape(3, 4)
    key = store.put_array(session, "image", array)
    np.testing.assert_array_equal(store.get(session, "image", key), array)
    assert store.has(session, "image", key)
    assert store.get(session, "image", "missing") is None
    assert store.get(session, "image", None, default="d") == "d"


def test_two_sessions_are_independent(store):
    a, b = new_session_id(), new_session_id()
    key = store.put_array(a, "image", np.ones(3))
    assert store.get(b, "image", key) is None
    store.put(b, "image", key, np.zeros(3))
    assert store.get(a, "image", key).sum() == 3


def test_content_key_is_stable_and_sensitive():
    x = np.arange(6, dtype=np.uint8)
    assert content_key(x) == content_key(x.copy())
    assert content_key(x) != content_key(x.reshape(2, 3))
    assert content_key(x) != content_key(x.astype(np.int16))
    assert content_key("a", 1) != content_key("a", 2)


@pytest.mark.parametrize("bad", ["", "abc", "../../etc", None, 5, "G" * 32])
def test_invalid_session_ids_are_refused(bad, store):
    with pytest.raises(ValueError):
        check_session(bad)
    with pytest.raises(ValueError):
        store.get(bad, "image", "k")


def test_invalid_kinds_and_keys_are_refused(store, session):
    with pytest.raises(ValueError):
        store.put(session, "a/b", "k", 1)
    with pytest.raises(ValueError):
        store.put(session, "image", "k/../x", 1)


def test_store_pickles_as_its_directory(store, session):
    store.put(session, "x", "k", 42)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.directory == store.directory and clone._cache is None
    assert clone.get(session, "x", "k") == 42
    clone.close()


def test_entries_expire(tmp_path, session):
    store = DiskStore(str(tmp_path / "s"), expire=0.01)
    store.put(session, "x", "k", 1)
    import time

    time.sleep(0.05)
    assert store.get(session, "x", "k") is None
    store.close()


def test_a_big_value_is_written_in_one_call_and_read_back_by_plain_diskcache(tmp_path, session, monkeypatch):
    import builtins

    import diskcache

    value = {"maps": [np.full((64, 64), 10, np.uint8) for _ in range(40)], "newlines": b"\n" * 50_000}
    store = DiskStore(str(tmp_path))
    writes = []
    real_open = builtins.open

    def counting_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "x" in mode:
            original = handle.write
            handle.write = lambda data: writes.append(len(data)) or original(data)
        return handle

    monkeypatch.setattr(builtins, "open", counting_open)
    store.put(session, "layers", "k", value)
    monkeypatch.undo()
    assert len(writes) == 1 and writes[0] > 200_000  # one file, one write (diskcache's own Disk: one per line)
    stored = store.get(session, "layers", "k")
    assert stored["newlines"] == value["newlines"] and all((m == 10).all() for m in stored["maps"])
    with diskcache.Cache(str(tmp_path)) as plain:  # another process with diskcache's own Disk reads it
        [key] = list(plain.iterkeys())
        assert plain.get(key)["newlines"] == value["newlines"]
    store.put(session, "layers", "small", 7)
    assert store.get(session, "layers", "small") == 7
