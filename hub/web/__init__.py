"""The management HTTP API and the live WebSocket feed (Starlette, served by hypercorn).

``create_app(hub)`` builds the application; ``serve(hub, host, port)`` runs it under
trio until cancelled.  Routes are declared in the ``api_*`` modules' ``ROUTES`` tables.
"""

from hub.web.app import create_app, serve
from hub.web.live import LiveOptions

__all__ = ["LiveOptions", "create_app", "serve"]
