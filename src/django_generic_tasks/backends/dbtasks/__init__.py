"""``DatabaseTaskBackend``: Django's own ``@task`` functions on this project's run store and
worker (``TASKS = {"default": {"BACKEND": "django_generic_tasks.backends.DatabaseTaskBackend"}}``).

``backend.py`` is the ``django.tasks`` backend (enqueue, results, checks), ``runs.py`` what the
worker runs (one task class per Django task function, found by name), ``results.py`` a run row
read as Django's ``TaskResult``. Only ``backend.py`` imports ``django.tasks`` when imported, so the
app can install the resolver of ``runs.py`` on Django 5.2 too.
"""
