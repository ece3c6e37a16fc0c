"""The task model: ``Task[P, R]`` and what it is made of.

Params and their exact JSON round trip, model refs, the run context, run ids, statuses and
handles, results and waiting for them, the registry, ``EnqueueRequest`` and the hop from
``start()`` to a backend. This layer knows no backend, no SQL and no web layer; the public names
are re-exported by ``django_generic_tasks`` itself.
"""
