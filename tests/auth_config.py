"""Server-side auth configuration for tests: a second token that logs in a read-only user.

These are real jupyter_server identity provider and authorizer classes, configured into
the test server the way a deployment would configure its own.
"""

from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth import Authorizer, IdentityProvider, User

READER_TOKEN = "reader-token-for-tests"


class ReaderTokenIdentityProvider(IdentityProvider):
    async def get_user(self, handler: Any) -> User | None:
        if self.get_token(handler) == READER_TOKEN:
            return User(username="reader", name="Read Only")
        return await ensure_async(super().get_user(handler))


class ReaderMayNotWriteAuthorizer(Authorizer):
    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        return not (user.username == "reader" and action == "write")


EDITOR_TOKEN = "editor-token-for-tests"


class EditorTokenIdentityProvider(ReaderTokenIdentityProvider):
    """Also logs in an editor, who may change notebooks but not run code on kernels. As a
    token user, so that HTTP requests need no XSRF cookie, as with the server's token."""

    async def get_user_token(self, handler: Any) -> User | None:
        if self.get_token(handler) == EDITOR_TOKEN:
            return User(username="editor", name="Editor")
        return await super().get_user_token(handler)


class EditorMayNotExecuteAuthorizer(ReaderMayNotWriteAuthorizer):
    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        if user.username == "editor" and action == "execute":
            return False
        return super().is_authorized(handler, user, action, resource)


class TokenReaderAndEditorIdentityProvider(IdentityProvider):
    """The reader and the editor both as token users: a POST they send needs no XSRF
    cookie, so a refusal of it is the authorizer's."""

    async def get_user_token(self, handler: Any) -> User | None:
        token = self.get_token(handler)
        if token == READER_TOKEN:
            return User(username="reader", name="Read Only")
        if token == EDITOR_TOKEN:
            return User(username="editor", name="Editor")
        return await ensure_async(super().get_user_token(handler))
