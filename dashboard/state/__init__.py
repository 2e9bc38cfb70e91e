"""Server-side state, the lowest layer of the dashboard: the per-session store of images, masks, predictions and
computed maps (`store`), the plain records it keeps instead of engine objects (`records`), uploaded models shared
through Redis (`model_store`), their retention and the local state's (`retention`), and the process-local, lazily
built resources: the model adapter, the store, method metadata (`resources`).

May import: `dashboard.config`, the standard library, numpy, diskcache/redis, the engine's pure numpy helpers, and the
engine lazily (in `resources`). Nothing else of the dashboard.
"""
