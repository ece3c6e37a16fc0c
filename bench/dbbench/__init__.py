"""A tiny Django project for ``bench/bench_database.py`` (ours or django-tasks-db) and its
Celery app; each runs in its own interpreter (ours: the project's venv, peers: throwaway venvs)."""
