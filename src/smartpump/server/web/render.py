"""Page rendering: Jinja2 with autoescape on, the role-aware navigation, and page security headers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from smartpump.server.auth import ALL_ROLES, Principal, Role
from smartpump.server.services.tile_look import alarm_label, look_of
from smartpump.server.web.display import NOTHING, at_resolution, exact, significant
from smartpump.server.web.session import csrf_token, new_presession, set_presession
from smartpump.server.web.station import rate_text

A, PH, AP, N, B, AU, V, MD = (
    Role.ADMIN,
    Role.PHARMACIST,
    Role.PHARMACY_APPROVER,
    Role.NURSE,
    Role.BIOMED,
    Role.AUDITOR,
    Role.VIEWER,
    Role.PHYSICIAN,
)
DASHBOARD_ROLES: Final = ALL_ROLES
PANEL_ROLES: Final = frozenset({N, B})
LIBRARY_READERS: Final = frozenset({PH, AP, MD, N, B, AU, V})
LIBRARY_REVIEWERS: Final = frozenset({PH, AP, MD, AU})
CONFIGURATION_READERS: Final = ALL_ROLES
EVENT_READERS: Final = frozenset({N, PH, AP, B, AU})
MAINTENANCE_ROLES: Final = frozenset({B, AU})
QUARANTINE_ROLES: Final = frozenset({B, AU})
BENCH_ROLES: Final = frozenset({B, AU, V})
CQI_ROLES: Final = frozenset({PH, AP, N, B, AU})
AUDIT_ROLES: Final = frozenset({AU})

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NavItem:
    """A navigation link and the roles that see it."""

    key: str
    label: str
    href: str
    roles: frozenset[Role]


NAV: Final = (
    NavItem(key="dashboard", label="Fleet", href="/ui/", roles=DASHBOARD_ROLES),
    NavItem(key="panel", label="Front panel", href="/ui/panel", roles=PANEL_ROLES),
    NavItem(key="libraries", label="Drug library", href="/ui/libraries", roles=LIBRARY_READERS),
    NavItem(
        key="configurations", label="Configurations", href="/ui/configurations", roles=CONFIGURATION_READERS
    ),
    NavItem(key="maintenance", label="Maintenance", href="/ui/maintenance", roles=MAINTENANCE_ROLES),
    NavItem(key="quarantine", label="Quarantine", href="/ui/quarantine", roles=QUARANTINE_ROLES),
    NavItem(key="bench", label="Bench", href="/ui/bench", roles=BENCH_ROLES),
    NavItem(key="cqi", label="CQI", href="/ui/cqi", roles=CQI_ROLES),
    NavItem(key="audit", label="Audit log", href="/ui/audit", roles=AUDIT_ROLES),
)


def nav_for(principal: Principal | None) -> list[NavItem]:
    """The navigation links a user's roles open."""
    if principal is None:
        return []
    return [item for item in NAV if principal.has_any_role(item.roles)]


def _number(value: Any) -> str:
    if value is None:
        return NOTHING
    if isinstance(value, Decimal):
        return exact(value)
    return str(value)


_ENV: Final = Environment(
    loader=PackageLoader("smartpump.server.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["num"] = _number
_ENV.filters["sig"] = significant
_ENV.filters["res"] = at_resolution
_ENV.globals["icon_of"] = lambda priority: look_of(priority).icon
_ENV.globals["label_of"] = alarm_label
_ENV.globals["rate_of"] = rate_text


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    active: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page (autoescaped) with the navigation, the user and a CSRF token."""
    nonce = new_presession(request)
    state = request.app.state.smartpump
    body = _ENV.get_template(template).render(
        principal=principal,
        nav=nav_for(principal),
        active=active,
        csrf=csrf_token(state.settings, request),
        roles=sorted(_roles(principal)),
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    if nonce is not None:
        set_presession(request, response, nonce)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _roles(principal: Principal | None) -> set[str]:
    if principal is None:
        return set()
    held = set(principal.global_roles)
    for roles in principal.facility_roles.values():
        held |= roles
    return {r.value for r in held}
