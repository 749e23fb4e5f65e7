"""The web server of AF-assistenten: the leader's page and (later) the supporter console.

``web.app.create_app()`` builds the aiohttp application. Feature modules add
their own routes: each is listed in ``web.app.ROUTE_MODULES`` and exposes
``setup(app, settings)``. ``python -m web`` serves it on
``settings.bind_host:settings.web_port``.
"""
