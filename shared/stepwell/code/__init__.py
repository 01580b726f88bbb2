"""Code-first workflows: a Python function over a durable Context, replayed from stored results."""
