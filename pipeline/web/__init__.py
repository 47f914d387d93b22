"""`personagraph serve`: a local web app over the persona graph (console, personas, neighbourhoods,
coverage, runs, samples), a JSON API documented at /docs, and the front end's files in `static/`.

    >>> from personagraph.web import create_app
    >>> app = create_app(personagraph.open(".personagraph"))   # then: uvicorn.run(app, host="127.0.0.1")

Needs `fastapi` and `uvicorn` (installed with personagraph). docs/web.md says how to use it safely.
"""

from __future__ import annotations

from personagraph.web.app import create_app

__all__ = ["create_app"]
