"""The web console (docs/console.md): server-rendered Jinja2 pages under /console/ with a little htmx,
every asset vendored in ``static/``. Handlers authenticate from the session cookie (``session.py``),
call the same runtime services the API and the CLI call, and render; ``views.surface`` is mounted by
``api/app.surfaces()`` like any other surface."""
