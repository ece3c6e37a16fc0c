"""The project of ``bench/bench_django_task_backend.py``: Django ``@task`` functions on
``DatabaseTaskBackend`` (alias ``ours``) and on django-tasks-db (alias ``dtdb``)."""
