"""Server-side state, the lowest layer of the dashboard: the per-session store of images, masks, predictions and
computed maps (`store`), and the process-local, lazily built resources: the model adapter, the store, method metadata
(`resources`).

May import: `dashboard.config`, the standard library, numpy, diskcache/redis, and the engine lazily (in `resources`).
Nothing else of the dashboard.
"""
