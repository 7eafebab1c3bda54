"""Typed dependencies: the shared state, a session per request, the caller, and role guards.

Dependencies that never wait on I/O are ``async``: FastAPI runs a sync one in its thread pool, a thread
hand-off per dependency per request that costs most when ingest keeps the interpreter busy.

Every route declares its access exactly once: ``Annotated[Access, require_roles(...)]`` or the
``PUBLIC`` marker. ``tests/server`` walks ``app.routes`` and fails on a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Final, TypeVar

from argon2 import PasswordHasher
from fastapi import Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from smartpump.clock import Clock
from smartpump.errors import LibraryFormatError
from smartpump.library.formats import json_format
from smartpump.server import audit
from smartpump.server.auth import Access, Principal, Role, principal_for_token
from smartpump.server.db.unit_of_work import in_own_transaction, unit_of_work
from smartpump.server.errors import AccessDeniedError, AuthenticationError, InvalidInputError
from smartpump.server.settings import Settings
from smartpump.server.state import ServerState

TOKEN_URL: Final = "/api/v1/auth/token"
PASSWORD_CHANGE_REQUIRED: Final = "auth.password_change_required"
MAX_PAGE: Final = 500
ModelT = TypeVar("ModelT", bound=BaseModel)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def get_state(request: Request) -> ServerState:
    """The app's shared state."""
    state: ServerState = request.app.state.smartpump
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One session per request, its unit of work: committed once when the route returns, rolled back when
    it raises (before the response is sent, so a failed commit is the request's error)."""
    with unit_of_work(state.sessions) as session:
        yield session


def client_address(request: Request) -> str:
    """The client's address as the ASGI server reports it (behind a proxy: run with ``--proxy-headers``)."""
    return request.client.host if request.client is not None else "unknown"


async def get_settings(state: StateDep) -> Settings:
    """The server settings."""
    return state.settings


async def get_clock(state: StateDep) -> Clock:
    """The server clock."""
    return state.clock


async def get_hasher(state: StateDep) -> PasswordHasher:
    """The password hasher."""
    return state.hasher


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def current_principal(state: StateDep, session: SessionDep, token: TokenDep) -> Principal:
    """The authenticated caller; 401 without a live bearer token."""
    if not token:
        raise AuthenticationError("authentication required", code="auth.required")
    return principal_for_token(session, state.settings, state.clock, token)


CurrentUser = Annotated[Principal, Depends(current_principal)]


class RoleGuard:
    """A dependency admitting callers who hold one of ``roles`` in some facility (or everywhere) and, unless
    ``before_password_change``, whose password need not be changed first (the bootstrap admin's)."""

    def __init__(self, roles: frozenset[Role], *, before_password_change: bool = False) -> None:
        self.roles = roles
        self.before_password_change = before_password_change

    def __call__(
        self, request: Request, principal: CurrentUser, session: SessionDep, clock: ClockDep
    ) -> Access:
        """The caller's access for this route; denials are audited and answered 403."""
        if principal.must_change_password and not self.before_password_change:
            raise AccessDeniedError(
                "change your password first (POST /api/v1/auth/password, or /ui/password)",
                code=PASSWORD_CHANGE_REQUIRED,
            )
        if not principal.has_any_role(self.roles):
            with in_own_transaction(session):
                audit.append(
                    session,
                    clock,
                    actor=principal.username,
                    action="access.denied",
                    object_type="route",
                    object_id=f"{request.method} {request.url.path}"[:128],
                    outcome="denied",
                )
            raise AccessDeniedError("your roles do not allow this", code="access.role")
        return Access(principal=principal, roles=self.roles)


def require_roles(*roles: Role, before_password_change: bool = False) -> Any:
    """Declare the roles a route accepts (use as ``Annotated[Access, require_roles(...)]``); with
    ``before_password_change`` the route also serves a caller who must change their password first."""
    if not roles:
        raise ValueError("a guarded route needs at least one role")
    return Depends(RoleGuard(frozenset(roles), before_password_change=before_password_change))


async def public_route() -> None:
    """Marker dependency: the route is deliberately open to anyone (health, token, metrics)."""


PUBLIC: Final = Depends(public_route)


class Page:
    """Pagination parameters: ``limit`` (1-500, default 50) and ``offset``."""

    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset

    def headers(self, response: Response, total: int) -> None:
        """Write ``X-Total-Count`` (and a ``Link`` to the next page) onto the response."""
        response.headers["X-Total-Count"] = str(total)
        if self.offset + self.limit < total:
            response.headers["Link"] = f'<?limit={self.limit}&offset={self.offset + self.limit}>; rel="next"'


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="items to skip")] = 0,
) -> Page:
    """The page a list request asks for."""
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]
MAX_ID: Final = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A numeric id in a URL, bounded to what every database column can hold."""


async def json_body(request: Request) -> Any:
    """The request body parsed as JSON with exact decimals (library limits never pass through float)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the request body is not UTF-8", code="request.encoding") from None
    try:
        return json_format.parse_json(text, what="request body")
    except LibraryFormatError as error:
        raise InvalidInputError(error.message, code="request.invalid_json") from None


JsonBody = Annotated[Any, Depends(json_body)]


def parse_body(model: type[ModelT], body: Any) -> ModelT:
    """Validate a decimal-exact JSON body against a request schema (errors become a 422)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


def body_schema(model: type[BaseModel] | None = None) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a route that reads its body through ``JsonBody``."""
    schema: dict[str, Any] = {"type": "object"} if model is None else model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
