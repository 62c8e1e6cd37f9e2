"""One module per process role, each built by the composition root (``bot.composition``):

- ``web``: ``python -m bot serve``: acks Slack, serves the HTTP API and /healthz; starts
  ``flow`` and hands it typed messages (``bot.slack.messages``) and queued run ids.
- ``flow``: the flow process: the slow half of Slack and the run-message watcher; with
  ``TASK_QUEUE=local`` it starts ``pool`` and hands it queued run ids and checks.
- ``pool``: the pool process (``TASK_QUEUE=local``): the sandbox and the runs.
- ``worker``: ``python -m bot worker``: a Celery worker executing runs (``TASK_QUEUE=celery``).
- ``cli``: the command line (``python -m bot ...``), which picks one of the above or does a
  task command itself.
"""
