"""Tasks that record to files, for tests whose worker is another process (Celery, db_worker)."""
