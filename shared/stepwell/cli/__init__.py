"""The ``stepwell`` command line."""
