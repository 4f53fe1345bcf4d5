"""Field types for a source's credentials: the checks every account login shares.

::

    class AcmeCredentials(BaseModel):
        username: AccountName = Field(title="Username", description="Acme account email")
        password: Password = Field(title="Password", description="Acme account password")
        token: ApiToken = Field(title="API token", description="...")

``Password`` and ``ApiToken`` are ``SecretStr`` fields (encrypted at rest, masked in
forms and logs like any ``SecretStr``) with a check; a plugin with its own wording for a
token's errors makes its type with :func:`one_word`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, SecretStr, StringConstraints
from pydantic_core import PydanticCustomError

AccountName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""A username or an account email: surrounding spaces removed, not empty."""


def _not_empty(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise PydanticCustomError("empty_password", "the password must not be empty")
    return value


Password = Annotated[SecretStr, AfterValidator(_not_empty)]
"""An account password: kept as given (spaces included), not empty."""


def one_word(empty: str, spaces: str) -> Callable[[SecretStr], SecretStr]:
    """The check of a one-word secret (an API token): surrounding spaces removed; the
    messages say what is wrong with an empty one or one with spaces inside.  A plugin
    with its own wording makes its type: ``Annotated[SecretStr, AfterValidator(one_word(
    "the token is empty", "an Acme token is one word"))]``."""

    def check(value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if not text:
            raise PydanticCustomError("token", empty)
        if any(c.isspace() for c in text):
            raise PydanticCustomError("token", spaces)
        return SecretStr(text)

    return check


ApiToken = Annotated[
    SecretStr,
    AfterValidator(one_word("the API token is empty", "the API token must not contain spaces")),
]
"""An API token: one word (no spaces inside), surrounding spaces removed."""
