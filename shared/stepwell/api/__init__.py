"""Stepwell's HTTP API (API Gateway HTTP API -> ``functions/api``): runs, workflows, approval
links and callbacks. ``stepwell.api.resolver.app`` is the Powertools resolver; the API's
dependencies come from :mod:`stepwell.api.deps`."""
