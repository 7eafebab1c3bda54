"""The front panel's POST-redirect-GET: what an action did travels to the GET that follows it as a signed
query (tone, words and the action pressed), so a reload shows the answer again without repeating the
action, and a forged link cannot make the panel say something the pump did not."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from smartpump.server.settings import Settings

TONES: Final = frozenset({"ok", "soft", "hard"})
MAX_TEXT: Final = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Flash:
    """The display line of the last action on a channel: its words, its tone and the action pressed."""

    text: str
    tone: str
    action: str


def _signature(settings: Settings, serial: str, channel: str, flash: Flash) -> str:
    key = settings.secret_key.get_secret_value().encode()
    basis = "|".join(("panel-flash", serial, channel, flash.action, flash.tone, flash.text))
    return hmac.new(key, basis.encode(), hashlib.sha256).hexdigest()


def flash_query(settings: Settings, serial: str, channel: str, flash: Flash) -> str:
    """The query string of the GET after an action (channel, action, tone, words and their signature)."""
    text = flash.text[:MAX_TEXT]
    signed = Flash(text=text, tone=flash.tone, action=flash.action)
    return urlencode(
        {
            "channel": channel,
            "done": signed.action,
            "tone": signed.tone,
            "said": text,
            "sig": _signature(settings, serial, channel, signed),
        }
    )


def read_flash(
    settings: Settings, serial: str, channel: str, *, done: str, tone: str, said: str, sig: str
) -> Flash | None:
    """The flash a GET carries, or None when it carries none, or its signature does not match (a forged or
    altered link shows no message rather than a false one)."""
    if not done or tone not in TONES or len(said) > MAX_TEXT:
        return None
    flash = Flash(text=said, tone=tone, action=done)
    if not hmac.compare_digest(sig, _signature(settings, serial, channel, flash)):
        return None
    return flash
