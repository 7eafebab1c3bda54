"""Closed sets of the server's records (stored as their string values)."""

from __future__ import annotations

from enum import StrEnum


class PumpStatus(StrEnum):
    """Where a pump stands in the fleet."""

    IN_SERVICE = "in_service"
    NEEDS_INSPECTION = "needs_inspection"
    OUT_OF_SERVICE = "out_of_service"
    RETIRED = "retired"


class MaintenanceKind(StrEnum):
    """Kinds of maintenance work; those in SCHEDULABLE can carry a preventive schedule."""

    CLEANING = "cleaning"
    BATTERY_CHECK = "battery_check"
    TUBING_CHECK = "tubing_check"
    SERVICE = "service"
    INSPECTION = "inspection"
    SOFTWARE_UPDATE = "software_update"
    LIBRARY_UPDATE = "library_update"
    PERFORMANCE_CHECK = "performance_check"


SCHEDULABLE = frozenset(
    {
        MaintenanceKind.CLEANING,
        MaintenanceKind.BATTERY_CHECK,
        MaintenanceKind.TUBING_CHECK,
        MaintenanceKind.SERVICE,
        MaintenanceKind.PERFORMANCE_CHECK,
    }
)


class MaintenanceResult(StrEnum):
    """Outcome of a piece of maintenance work."""

    PASS = "pass"
    FAIL = "fail"
    INFO = "info"


class FaultCategory(StrEnum):
    """What is wrong with a pump."""

    CRACKED_SCREEN = "cracked_screen"
    REPEATED_ALARMS = "repeated_alarms"
    POOR_BATTERY = "poor_battery"
    PHYSICAL_DAMAGE = "physical_damage"
    FLUID_INGRESS = "fluid_ingress"
    FLOW_ACCURACY = "flow_accuracy"
    OTHER = "other"


class FaultStatus(StrEnum):
    """Whether a fault report is still open."""

    OPEN = "open"
    RESOLVED = "resolved"


class ChangeRequestStatus(StrEnum):
    """Where a library change request stands."""

    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DONE = "done"


class ChangeRequestSeverity(StrEnum):
    """How much a requested library change matters to patient safety (critical: act now)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ConfigurationStatus(StrEnum):
    """Lifecycle of a pump configuration version: a draft until a second biomed releases (signs) it."""

    DRAFT = "draft"
    RELEASED = "released"


class PackageStatus(StrEnum):
    """Where a software package stands: uploaded and waiting for a second person, or approved (signed)."""

    PENDING = "pending"
    APPROVED = "approved"


class GrantStatus(StrEnum):
    """A role grant in force, or a privileged grant waiting for a second admin."""

    ACTIVE = "active"
    PENDING = "pending"


class CommandStatus(StrEnum):
    """What became of a signed pump command."""

    QUEUED = "queued"
    SENT = "sent"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    EXPIRED = "expired"


class DeploymentStatus(StrEnum):
    """Where a deployment stands: offering waves, stopped on a refusal or by hand, or done."""

    ACTIVE = "active"
    HALTED = "halted"
    COMPLETED = "completed"


class OrderStatus(StrEnum):
    """Where an EHR order stands: offered or rejected on receipt, then its outcome at the pump."""

    OFFERED = "offered"
    REJECTED = "rejected"
    STARTED = "started"
    APPLIED = "applied"
    DELIVERING = "delivering"
    STOPPED = "stopped"
    COMPLETED = "completed"
    DECLINED = "declined"
    REFUSED = "refused"
    EXPIRED = "expired"
