"""Code tables as data: ISO/IEEE 11073-10101 (MDC) terms, the IHE PIV error codes, unit codes.

Sources: IHE PCD TF Vol. 2 Rev 9.0 (tables, Appendix B.3, E and M), TF Vol. 3 Rev 8.0 §7.1. Codes
are context-free (partition x 65536 + term). Code 0 marks a provisional term (IHE published the
REFID before a code was assigned): tables key on REFID as well as on code. Verify against NIST
RTMMS before release.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from smartpump.errors import UnitError
from smartpump.units import AmountUnit, Basis, DoseUnit, TimeUnit, mdc_context_free


@dataclass(frozen=True, slots=True)
class MdcTerm:
    """One nomenclature term: REFID, context-free code (0 = provisional) and what we use it for."""

    refid: str
    code: int
    use: str

    def cwe(self) -> tuple[str, str, str]:
        """The CWE triplet ``code^REFID^MDC``."""
        return (str(self.code), self.refid, "MDC")


MDC_TERMS: Final[tuple[MdcTerm, ...]] = (
    MdcTerm("MDC_DEV_PUMP_INFUS_MDS", 69985, "infusion pump MDS; alert source"),
    MdcTerm("MDC_DEV_PUMP_INFUS_VMD", 69986, "infusion pump VMD; PIV pump-ID OBX"),
    MdcTerm("MDC_DEV_PUMP_INFUS_LVP_MDS", 70049, "large-volume pump MDS"),
    MdcTerm("MDC_DEV_PUMP_INFUS_LVP_VMD", 70050, "large-volume pump VMD"),
    MdcTerm("MDC_DEV_PUMP_DELIVERY_INFO", 70067, "IPEC delivery-info channel"),
    MdcTerm("MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY", 70071, "IPEC primary source channel"),
    MdcTerm("MDC_DEV_PUMP_INFUSATE_SOURCE_SECONDARY", 0, "IPEC secondary source channel (provisional)"),
    MdcTerm("MDC_FLOW_FLUID_PUMP", 157784, "programmed rate"),
    MdcTerm("MDC_FLOW_FLUID_PUMP_CURRENT", 158014, "current total pump flow"),
    MdcTerm("MDC_RATE_DOSE", 157924, "dose rate"),
    MdcTerm("MDC_VOL_FLUID_TBI", 157884, "VTBI / volume programmed"),
    MdcTerm("MDC_VOL_FLUID_TBI_REMAIN", 157872, "VTBI remaining"),
    MdcTerm("MDC_VOL_FLUID_DELIV_TOTAL", 157993, "cumulative volume delivered"),
    MdcTerm("MDC_TIME_PD_REMAIN", 157916, "time remaining"),
    MdcTerm("MDC_CONC_DRUG", 157760, "drug concentration"),
    MdcTerm("MDC_DRUG_NAME_LABEL", 184514, "drug label"),
    MdcTerm("MDC_PUMP_DRUG_LIBRARY_CARE_AREA", 184516, "care area / profile"),
    MdcTerm("MDC_PUMP_DRUG_LIBRARY_VERSION", 184517, "drug library version"),
    MdcTerm("MDC_PUMP_INFUSING_STATUS", 184519, "pump infusing status"),
    MdcTerm("MDC_DEV_PUMP_ACTIVE_SOURCES", 158016, "active sources"),
    MdcTerm("MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS", 158005, "source delivery status"),
    MdcTerm("MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE", 158008, "program delivery mode"),
    MdcTerm("MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL", 158012, "source channel label"),
    MdcTerm("MDC_ATTR_EVT_COND", 68487, "IPEC event"),
    MdcTerm("MDC_ATTR_EVT_SOURCE", 68488, "IPEC event source channel"),
    MdcTerm("MDC_EVT_PUMP_DELIV_START", 197288, "delivery start"),
    MdcTerm("MDC_EVT_PUMP_DELIV_STOP", 0, "delivery stop (code not printed in the TF)"),
    MdcTerm("MDC_EVT_PUMP_DELIV_COMP", 0, "delivery complete (code not printed in the TF)"),
    MdcTerm("MDC_ATTR_PT_WEIGHT", 68063, "patient weight"),
    MdcTerm("MDC_ATTR_PT_HEIGHT", 68060, "patient height"),
    MdcTerm("MDC_AREA_BODY_SURF_ACTUAL", 188744, "body surface area"),
    MdcTerm("MDC_DOSE_PCA_LIMIT", 157985, "PCA dose limit"),
    MdcTerm("MDC_VOL_PCA_DOSE_LIMIT", 157986, "PCA volume limit"),
    MdcTerm("MDC_TIME_PD_PCA_DOSE_LIMIT", 157987, "PCA dose-limit period"),
    MdcTerm("MDC_RATE_PCA_MAX_DOSES_PER_HOUR", 157988, "PCA max doses per hour"),
    MdcTerm("MDC_TIME_PCA_LOCKOUT", 157989, "PCA lockout interval"),
    MdcTerm("MDC_VOL_FLUID_CONTAINER_START", 157994, "container volume at start"),
    MdcTerm("MDC_DOSE_PCA_PATIENT", 158017, "PCA patient (demand) dose"),
    MdcTerm("MDC_DOSE_LOADING", 158018, "loading dose"),
    MdcTerm("MDC_DOSE_CLINICIAN", 158019, "clinician bolus dose"),
    MdcTerm("MDCX_INFUS_ORDER_STEP_TYPE", 0, "multistep step type (provisional)"),
    MdcTerm("MDCX_INFUS_TOTAL_NUM_STEPS", 0, "multistep number of steps (provisional)"),
    MdcTerm("MDC_EVT_ALARM", 196616, "ACM alarm (OBR-4)"),
    MdcTerm("MDC_EVT_FLUID_LINE_OCCL", 196940, "occlusion"),
    MdcTerm("MDC_EVT_PUMP_FLOW_FREE", 197206, "free flow"),
    MdcTerm("MDC_EVT_BATT_LO", 196802, "low battery"),
    MdcTerm("MDC_EVT_BATT_FAIL", 196800, "battery failed"),
    MdcTerm("MDC_EVT_STAT_DOOR_OPEN", 202828, "door open"),
    MdcTerm("MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN", 203320, "syringe near empty"),
    MdcTerm("MDC_ATTR_ALERT_SOURCE", 68480, "alert source"),
    MdcTerm("MDC_ATTR_EVENT_PHASE", 68481, "alert event phase"),
    MdcTerm("MDC_ATTR_ALARM_STATE", 68482, "alarm state"),
    MdcTerm("MDC_ATTR_ALARM_INACTIVATION_STATE", 68483, "alarm inactivation state"),
    MdcTerm("MDC_ATTR_ALARM_PRIORITY", 68484, "alarm priority"),
    MdcTerm("MDC_ATTR_ALERT_TYPE", 68485, "alert type"),
)

_BY_REFID: Final = {t.refid: t for t in MDC_TERMS}
_BY_CODE: Final = {t.code: t for t in MDC_TERMS if t.code}


def term(refid: str) -> MdcTerm:
    """The term with this REFID (KeyError for a REFID not in the table: a programming error)."""
    return _BY_REFID[refid]


def find_term(code: str, refid: str) -> MdcTerm | None:
    """The term named by a CWE's identifier or REFID: the REFID wins (codes may be provisional)."""
    by_refid = _BY_REFID.get(refid.strip())
    if by_refid is not None:
        return by_refid
    stripped = code.strip()
    return _BY_CODE.get(int(stripped)) if (stripped.isascii() and stripped.isdigit()) else None


# IHE PCD TF Vol. 2 Appendix B.3: PIV application error codes (ERR-5).
PIV_ERRORS: Final[dict[int, str]] = {
    9001: "Unknown infuser or channel",
    9002: "Channel currently infusing",
    9003: "Missing required parameter",
    9004: "Invalid parameter",
    9005: "Parameter outside allowable range",
    9006: "Infuser powered off",
    9007: "Infuser offline or unreachable",
    9008: "Invalid units",
    9009: "Dose or rate units do not match the drug library",
    9010: "Unable to match medication to drug library",
    9011: "Patient weight mismatch",
    9012: "Patient ID mismatch",
    9013: "Cannot program as piggyback",
    9014: "Dose rate or VTBI exceeds maximum",
    9015: "Request timed out",
    9016: "Other error",
    9017: "Infuser cannot accept program (alarming or standby)",
    9018: "Parameter does not match drug library",
    9019: "Patient weight missing for a weight-based drug",
    9020: "Patient height missing for a BSA-based drug",
    9021: "Care area or profile mismatch",
    9022: "Program is stale (order time too old)",
    9023: "Program rejected by user",
    9024: "Drug library hard limit exceeded",
    9025: "Lockout interval missing",
    9026: "PCA dose limit missing",
    9027: "BSA missing",
    9028: "Set, cassette or syringe not installed",
    9029: "Care area not selected",
    9030: "Current medication cannot be interrupted by a piggyback",
    9031: "Patient ID missing or invalid",
    9032: "Delayed start",
    9033: "Pump alarming",
    9034: "Not enough fluid for bolus",
    9035: "Parent order mismatch",
    9036: "Medication mismatch",
    9037: "Concentration mismatch",
    9038: "Bolus order type (ORC-1 CH) unsupported",
    9039: "Medication not configured for bolus",
    9040: "Bolus units mismatch",
    9041: "Cannot parse multistep order",
    9042: "No loading dose configured",
    9043: "Multistep unsupported for this medication",
    9044: "Multistep unsupported",
}

# HL7 table 0357 (message error condition codes) used in ERR-3.
HL7_ERROR_SEGMENT_SEQUENCE: Final = "100"
HL7_ERROR_REQUIRED_FIELD: Final = "101"
HL7_ERROR_DATA_TYPE: Final = "102"
HL7_ERROR_UNSUPPORTED_MESSAGE_TYPE: Final = "200"
HL7_ERROR_APPLICATION_INTERNAL: Final = "207"
HL7_ERROR_TEXT: Final[dict[str, str]] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "200": "Unsupported message type",
    "207": "Application internal error",
}


@dataclass(frozen=True, slots=True)
class UnitCode:
    """A unit as it travels: UCUM code and, where the nomenclature has one, the MDC term."""

    ucum: str
    mdc_term: int | None = None
    mdc_refid: str | None = None

    def cwe(self) -> tuple[str, ...]:
        """CWE with the MDC triplet first and UCUM as the alternate (the TF's preferred order)."""
        if self.mdc_term is None:
            return (self.ucum, self.ucum, "UCUM")
        return (
            str(mdc_context_free(self.mdc_term)),
            self.mdc_refid or "",
            "MDC",
            self.ucum,
            self.ucum,
            "UCUM",
        )


ML: Final = UnitCode("mL", 1618, "MDC_DIM_MILLI_L")
ML_PER_H: Final = UnitCode("mL/h", 3122, "MDC_DIM_MILLI_L_PER_HR")
KG: Final = UnitCode("kg", 1731, "MDC_DIM_KILO_G")
MINUTE: Final = UnitCode("min", 2208, "MDC_DIM_MIN")
HOUR: Final = UnitCode("h", 2240, "MDC_DIM_HR")
SECOND: Final = UnitCode("s", 2176, "MDC_DIM_SEC")
CM: Final = UnitCode("cm", 1297, "MDC_DIM_CENTI_M")
M2: Final = UnitCode("m2", None, None)

# Non-dose quantities: UCUM code -> (our unit, factor to it). Dose units go through DoseUnit.
_WEIGHT_KG: Final[dict[str, Decimal]] = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "[lb_av]": Decimal("0.45359237"),
}
_HEIGHT_CM: Final[dict[str, Decimal]] = {"cm": Decimal(1), "m": Decimal(100), "[in_i]": Decimal("2.54")}
_VOLUME_ML: Final[dict[str, Decimal]] = {"mL": Decimal(1), "L": Decimal(1000)}
_TIME_MIN: Final[dict[str, Decimal]] = {"min": Decimal(1), "h": Decimal(60), "s": Decimal(1) / Decimal(60)}
_MDC_SIMPLE: Final[dict[int, str]] = {
    1731: "kg",
    1728: "g",
    1297: "cm",
    1618: "mL",
    2208: "min",
    2240: "h",
    2176: "s",
}

_MDC_REFID_PREFIX: Final = "MDC_DIM_"


def _all_dose_units() -> dict[int, DoseUnit]:
    table: dict[int, DoseUnit] = {}
    for amount in AmountUnit:
        for basis in Basis:
            for time in (None, *TimeUnit):
                try:
                    unit = DoseUnit(amount, basis, time)
                except UnitError:
                    continue
                code = unit.mdc_code
                if code is not None and code not in table:
                    table[code] = unit
    return table


_MDC_DOSE_UNITS: Final = _all_dose_units()


def dose_unit_code(unit: DoseUnit) -> UnitCode:
    """The UnitCode of one of our dosing units (MDC term when the nomenclature has one)."""
    code = unit.mdc_code
    refid = _dose_refid(unit) if code is not None else None
    return UnitCode(unit.ucum, code, refid)


_AMOUNT_REFID: Final = {
    AmountUnit.G: "X_G",
    AmountUnit.MG: "MILLI_G",
    AmountUnit.MCG: "MICRO_G",
    AmountUnit.NG: "NANO_G",
    AmountUnit.UNITS: "X_INTL_UNIT",
    AmountUnit.MILLIUNITS: "MILLI_INTL_UNIT",
    AmountUnit.MEQ: "MILLI_EQUIV",
    AmountUnit.MMOL: "MILLI_MOLE",
    AmountUnit.ML: "MILLI_L",
}
_TIME_REFID: Final = {TimeUnit.MIN: "MIN", TimeUnit.H: "HR", TimeUnit.DAY: "DAY"}


def _dose_refid(unit: DoseUnit) -> str:
    parts = [_MDC_REFID_PREFIX + _AMOUNT_REFID[unit.amount]]
    if unit.basis is Basis.KG:
        parts.append("KG")
    if unit.time is not None:
        parts.append(_TIME_REFID[unit.time])
    return "_PER_".join(parts)


def unit_candidates(components: tuple[str, ...]) -> tuple[str, ...]:
    """The unit spellings a CWE offers, best first, tolerating the IHE examples' defects.

    Each triplet (identifier, text, coding system) is read: MDC codes (context-free or bare
    partition-4 terms) are mapped to UCUM; a numeric identifier under 'UCUM' (the TF examples put
    the MDC term there) is read as an MDC term; otherwise the UCUM identifier, then its text.
    """
    out: list[str] = []
    for start in (0, 3):
        ident, text, system = (
            (components[start + i].strip() if start + i < len(components) else "") for i in range(3)
        )
        if ident.isascii() and ident.isdigit():
            term_code = int(ident)
            if term_code >= 65536:
                term_code -= mdc_context_free(0)
            mapped = _MDC_DOSE_UNITS.get(term_code)
            if mapped is not None:
                out.append(mapped.ucum)
            elif term_code in _MDC_SIMPLE:
                out.append(_MDC_SIMPLE[term_code])
            if system.upper() != "MDC" and text:
                out.append(text)
            continue
        if system.upper() == "MDC":
            if text:
                out.append(text)
            continue
        out.extend(v for v in (ident, text) if v)
    return tuple(dict.fromkeys(out))


def dose_unit_from_cwe(components: tuple[str, ...]) -> DoseUnit:
    """The dosing unit a CWE names (UCUM or MDC).

    Raises:
        UnitError: ``unit.unknown`` when no triplet names a unit of our vocabulary.
    """
    for candidate in unit_candidates(components):
        try:
            return DoseUnit.parse(candidate)
        except UnitError:
            continue
    raise UnitError(f"unknown dosing unit {'^'.join(components)!r}", code="unit.unknown")


def _scaled(components: tuple[str, ...], table: dict[str, Decimal], what: str) -> Decimal:
    for candidate in unit_candidates(components):
        if candidate in table:
            return table[candidate]
    raise UnitError(f"unknown {what} unit {'^'.join(components)!r}", code="unit.unknown")


def weight_factor_to_kg(components: tuple[str, ...]) -> Decimal:
    """Factor that turns a weight in the CWE's unit into kg (kg when the CWE is empty)."""
    return Decimal(1) if not any(components) else _scaled(components, _WEIGHT_KG, "weight")


def height_factor_to_cm(components: tuple[str, ...]) -> Decimal:
    """Factor that turns a height in the CWE's unit into cm (cm when the CWE is empty)."""
    return Decimal(1) if not any(components) else _scaled(components, _HEIGHT_CM, "height")


def volume_factor_to_ml(components: tuple[str, ...]) -> Decimal:
    """Factor that turns a volume in the CWE's unit into mL (mL when the CWE is empty)."""
    return Decimal(1) if not any(components) else _scaled(components, _VOLUME_ML, "volume")


def time_factor_to_min(components: tuple[str, ...]) -> Decimal:
    """Factor that turns a duration in the CWE's unit into minutes (min when the CWE is empty)."""
    return Decimal(1) if not any(components) else _scaled(components, _TIME_MIN, "time")
