"""Background work: the background-callback managers and the forkserver (`background`, `preload`), and the Celery +
Redis scale-out (`scaleout`, `celery_worker`).

May import: `dashboard.config`, `dashboard.state`; `celery_worker` builds the same app through the repository's
`app.py`. Never the view or the callbacks directly.
"""
