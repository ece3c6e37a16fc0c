"""Django's PostgreSQL backend for the test suite, with one change: see ``base``."""
