"""``ptdry ui``: a local web dashboard of the runs in a database (needs ``ptdry[ui]``).

:func:`ptdry.ui.app.create_app` builds the ASGI application; :func:`ptdry.ui.server.serve`
runs it with uvicorn; ``python -m ptdry.ui`` (what ``ptdry ui`` starts) is the command line.
Nothing is imported here, so a missing extra is reported by the command, not by an import.
"""
