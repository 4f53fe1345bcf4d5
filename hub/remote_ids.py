"""What a device's remote id may be (the schema, the API, the store and the command
line's help all say it), kept free of SQLAlchemy; ``hub.models`` re-exports both."""

from __future__ import annotations

import re

REMOTE_ID_RE = re.compile(r"^[A-Za-z0-9\-_():]+$")
REMOTE_ID_RULE = "only letters, digits and - _ ( ) : are allowed, no spaces"
