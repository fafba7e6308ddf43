"""``marginopt serve``: the HTTP service (FastAPI on uvicorn) and the desk page it serves.

Nothing here is imported by the library: FastAPI and uvicorn come with the ``service``
extra (``pip install 'marginopt[service]'``), and ``marginopt.service.app`` imports them.

- ``cases``: a case sent as JSON -> ``Case`` (inline tables only; no file is read), the demo as JSON
- ``jobs``: solves on a bounded thread pool with a time limit
- ``limits``: the request-body size limit (413)
- ``app``: ``create_app(settings)``, the endpoints and the error responses
- ``static/``: the desk page (HTML, JS, CSS; no build step, nothing fetched from elsewhere)
"""
