"""Background work and the serving processes: the background-callback managers and the forkserver (`background`,
`preload`), cooperative cancel between batches (`cancellation`), the Celery + Redis scale-out (`scaleout`,
`celery_worker`), and a gunicorn worker's Dash set-up before it takes traffic (`web_worker`).

May import: `dashboard.config`, `dashboard.state`; `celery_worker` builds the same app through the repository's
`app.py`. Never the view or the callbacks directly.
"""
