"""``rootscope serve``: a local page to paint labels, train the pixel classifier live, correct and review.

:class:`~rootscope.web.workspace.Workspace` holds the logic (plain Python on arrays);
:func:`~rootscope.web.app.create_app` puts it behind FastAPI; ``static/`` is the page (plain HTML,
CSS and JavaScript, no build step). FastAPI and uvicorn are the ``web`` extra.
"""
