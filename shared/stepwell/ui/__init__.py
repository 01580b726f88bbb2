"""The dashboard: static HTML, CSS and small hand-written JavaScript modules that call the
HTTP API from the browser, served beside the API by ``stepwell dev`` and, against a deployed
stack, by ``stepwell ui`` (which signs the browser's calls with the user's AWS credentials)."""
