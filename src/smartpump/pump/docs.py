"""Render docs/events.md from the event and alarm tables, so the documentation cannot drift."""

from __future__ import annotations

from decimal import Decimal

from smartpump.pump.alarms import ALARMS, SIGNALS, EndedBy
from smartpump.pump.events import EVENT_FIELDS, SCHEMA_VERSION


def _n(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


def render_events_md() -> str:
    """The Markdown text of docs/events.md (event vocabulary, data fields, alarm catalog)."""
    lines = [
        "# Pump events",
        "",
        "<!-- generated from smartpump.pump.events.EVENT_FIELDS and smartpump.pump.alarms.ALARMS;"
        " tests/unit/pump/test_pump_docs.py fails when this file is stale -->",
        "",
        f"Schema version: **{SCHEMA_VERSION}**. Every event is `{{v, pump, seq, ts, channel, type, data}}`:",
        "`seq` is strictly increasing per pump and survives restarts (`Pump(next_seq=...)`), `ts` is UTC",
        "from the pump's clock (an occurrence computed in advance, such as VTBI reached, carries its exact",
        "time), `channel` is `A`-`D` or null for the whole pump. Decimals travel as exact strings",
        "(`PumpEvent.to_dict`). A new field is a compatible change; renaming or removing one bumps `v`.",
        "",
        "## Event types",
        "",
        "| type | data fields |",
        "|---|---|",
    ]
    for type_, fields in EVENT_FIELDS.items():
        lines.append(f"| `{type_.value}` | {', '.join(f'`{f}`' for f in fields) or '-'} |")
    lines += [
        "",
        "Alerts inside `program.checked`, `alert.overridden`, `program.reprogrammed` and",
        "`program.cancelled` are objects with `rule`, `parameter`, `limit_kind`, `limit`, `value`, `unit`,",
        "`factor` and `level`.",
        "`program.cancelled` with `auto_programmed` true is an EHR order declined by the nurse; `reason` is",
        "`wrong_patient`, `order_discrepancy`, `patient_condition`, `not_due`, `other` (empty for a manual",
        "cancel). A held bolus, loading-dose or piggyback offer declined before any check has `verdict`",
        "`unchecked`.",
        "",
        "`command.refused` is logged when a server command fails verification on the pump (codes",
        "`command.forged`, `command.replayed`, `command.expired`, `command.foreign`, `command.malformed`).",
        "`library.rejected` and `configuration.rejected` carry the verification code (`signature.invalid`,",
        "`signature.payload`, `signature.wrong_hospital`, `signature.rollback`, and for a configuration",
        "`signature.wrong_model`). A configuration activates only when every channel is idle;",
        "`configuration.activated` carries the SHA-256 of its canonical bytes, and version 0 is the",
        "pump's factory default.",
        "`software.rejected` carries `software.malformed`, `software.forged`, `software.wrong_model` or",
        "`software.downgrade` (a version not above both the running and the pending one); a verified",
        "package is `software.installed` (`pending` while a channel holds a therapy) and becomes",
        "`software.activated` only when every channel is idle.",
        "`trust.installed` is logged when a signed trust list (`trust.install`) replaces the keys the pump",
        "trusts: `version` and `previous_version` of the list, `key_id` of the trust-root key that signed",
        "it, `key_ids` now trusted (`purpose:key_id`) and the ids `revoked` by it. `trust.rejected` carries",
        "`signature.unknown_key`, `signature.wrong_purpose`, `signature.invalid`, `trust.malformed`,",
        "`trust.rollback`, `trust.revoked_key` or `trust.purpose_empty`; the keys held do not change.",
        "`events.shed` is written by the pump's durable outbox (not by therapy code) when it had to drop",
        "routine telemetry to stay within capacity; it lists what was dropped. How events travel to the",
        "server (topics, envelope, acknowledgement) is in `docs/transport.md`.",
        "The server, analytics and interop take every event type, alarm id and channel state from",
        "these tables (`EventType`, `AlarmId`, `ChannelState`) and keep no copy:",
        "`tests/unit/server/test_pump_vocabulary.py` fails on a copied or invented name in their code,",
        "the page templates or the page script. A PCA therapy starts with `infusion.started` and comes",
        "back from a pause with `infusion.resumed`; `pca.started` and `pca.resumed`, listed here before,",
        "were never emitted and are gone.",
        "`patient.associated` records who the pump is for: `patient_id` with its assigning `authority` and",
        "HL7 identifier type `id_type` (table 0203, `MR` by default), the legal name when known, and",
        "`source` (`scan` or `entry` on the front panel, `server` from the API, `order` from an EHR order's",
        "patient context). Another patient is refused (`pump.patient_locked`) while a channel is in use; the",
        "server keeps the latest association per pump and EHR documentation carries it (docs/interop.md).",
        "",
        "## Alarm lifecycle",
        "",
        "Every alarm the pump shows begins with `alarm.raised` and leaves the board with exactly one",
        "`alarm.cleared`, whichever way it goes; `alarm.escalated` is the only change of its priority",
        "(`from_priority` -> `to_priority`). `alarm.cleared` carries the priority the alarm had,",
        "`duration_s` since it was raised and `by`, one of "
        + ", ".join(f"`{b.value}`" for b in EndedBy)
        + ":",
        "`operator` (reset at the pump), `condition_ended` (a non-latching alarm whose condition is gone),",
        "`resumed` (the paused reminder when the channel runs again), `stopped` (ended with the infusion:",
        "stopped, or its PCA therapy gone), `set_changed` (a new administration set), `superseded` (another",
        "alarm took its place, named in `superseded_by`: the near-end alarm when the infusion completes, the",
        "paused reminder when a stopping alarm takes the channel). A restarted pump starts with an empty",
        "board (`pump.started`, `pump.state_restored`): what is still shown is raised again. The status",
        "heartbeat carries the board as it is now (`docs/fleet.md`).",
        "",
        "## Alarm catalog (IEC 60601-1-8 priorities)",
        "",
        "| alarm | priority | latching | stops delivery | message key | rationale |",
        "|---|---|---|---|---|---|",
    ]
    for spec in ALARMS.values():
        lines.append(
            f"| `{spec.id.value}` | {spec.priority.value} | {'yes' if spec.latching else 'no'} | "
            f"{'yes' if spec.stops_delivery else 'no'} | `{spec.message_key}` | {spec.rationale} |"
        )
    lines += [
        "",
        "## Alarm signals per priority (IEC 60601-1-8 Tables 2 and 3)",
        "",
        "| priority | colour | flashing (Hz) | duty (%) | pulses per burst | burst (s) | inter-burst (s) "
        "| sounds at least (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for signal in SIGNALS.values():
        lines.append(
            f"| {signal.priority.value} | {signal.colour} | {_n(signal.flash_hz) or 'constant'} | "
            f"{_n(signal.duty_percent)} | {signal.pulses_per_burst} | {_n(signal.burst_s)} | "
            f"{_n(signal.inter_burst_s) or 'no repeat'} | {_n(signal.min_audible_s)} |"
        )
    lines += [
        "",
        "A condition that ends at once still sounds for the last column (half a burst for high, one",
        "burst for medium) unless the operator pauses the audio or resets the alarm (60601-1-8 6.10).",
        "Alarms are presented highest priority first, then oldest, then by channel and id.",
        "",
        "Audio pause lasts 120 s; a newly raised alarm breaks through it (`alarm.audio_resumed`,",
        "reason `new_alarm`). A channel paused for 2 min raises `channel.paused_too_long` (low), escalated",
        "to medium after 5 more minutes unattended (`alarm.escalated`).",
        "",
    ]
    return "\n".join(lines)
