#!/usr/bin/env python
"""``manage.py`` for the test settings, used by tests that start real worker processes.

``TASKS_TEST_IMPORT`` (comma-separated modules) is imported after setup, so tests can register
extra tasks in the worker process.
"""

import os
import sys

# Python puts this script's directory (tests/) first on sys.path, where tests/typing would
# shadow the standard library's typing: use the repository root instead.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT

if __name__ == "__main__":
    from importlib import import_module

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    for module in filter(None, os.environ.get("TASKS_TEST_IMPORT", "").split(",")):
        import_module(module)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
