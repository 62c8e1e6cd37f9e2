"""Code that runs inside the zygote and the run children.

This package is imported twice: by the app as ``bot.worker.sandbox._child`` (for probing and
the wire protocol) and by the zygote as the top-level package ``_child``. It must therefore use
relative imports only, import nothing from the rest of the app, and depend on the stdlib alone.
"""
