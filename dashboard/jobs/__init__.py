"""Background work and the serving processes: the background-callback managers (`background`: which one runs the
jobs, and job processes from a forkserver with `preload`; `thread_jobs`: jobs in threads of the web process, the
default), cooperative cancel between batches (`cancellation`), the Celery + Redis scale-out (`scaleout`,
`celery_worker`), and a gunicorn worker's Dash set-up before it takes traffic (`web_worker`).

May import: `dashboard.config`, `dashboard.state`; `celery_worker` builds the same app through the repository's
`app.py`. Never the view or the callbacks directly.
"""
