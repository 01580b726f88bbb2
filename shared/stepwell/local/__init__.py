"""Running Stepwell on one machine.

* :mod:`stepwell.local.stack`: the local stack, template.yaml in one process (``stepwell dev``,
  ``stepwell run``, the end-to-end tests); see docs/local-development.md.
* :mod:`stepwell.local.inprocess`: a smaller world for unit tests (memory store, callables as
  step functions, no AWS at all).
"""
