"""Import a BD Alaris Guardrails (Editor v12) data-set report (.xlsx) into a DrugLibrary, whole.

Every profile becomes a CareArea, every drug/fluid row an Entry concentration (rows of one
profile x section x drug x therapy x dosing unit that share every limit share one Entry); every
row the model cannot hold is listed in the ImportReport with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from smartpump.errors import LibraryFormatError, SmartpumpError
from smartpump.library.formats.alaris_layout import (
    CUSTOM,
    FORMAT,
    MASTER_CONC_RE,
    NO_DRUGS,
    SECTION_ANES,
    SECTION_CONT,
    SECTION_FLUIDS,
    SECTION_IDS,
    SECTION_INT,
    SECTION_PCA,
    VERSION_RE,
    Row,
    amount_unit,
    config_error,
    device_defaults,
    devices_of,
    enabled,
    hhmm_minutes,
    limits_of,
    master_number,
    pca_window,
    per_ml_unit,
    sheet_rows,
)
from smartpump.library.formats.detect import cell_text, open_workbook, slug
from smartpump.library.formats.import_report import ImportResult, ReportBuilder, flag_high_alert
from smartpump.library.model import (
    BasicInfusionPolicy,
    Bounds,
    CareArea,
    CustomConcentration,
    DeliveryMode,
    DeviceDefaults,
    DoseLimits,
    Drug,
    DrugLibrary,
    Entry,
    EntryKind,
    LibraryStatus,
    PCALimits,
    PCASettings,
    Provenance,
    match_key,
)
from smartpump.units import ML_PER_H, AmountUnit, Concentration, DoseUnit


@dataclass(slots=True)
class _Group:
    template: Entry
    concentrations: list[Concentration] = field(default_factory=list)
    custom: CustomConcentration | None = None


def read_alaris(path: Path) -> ImportResult:
    """Import an Alaris Guardrails data-set report; the report lists every unrepresented row.

    Raises:
        LibraryFormatError: the workbook is not an Alaris report (missing sheets or columns).
    """
    workbook = open_workbook(path)
    try:
        return _Importer(workbook, path.name).run()
    finally:
        workbook.close()


def alaris_version(data_set_name: str) -> int | None:
    """The version in an Alaris data-set name: the number after the last 'v' ('Conway2024v66is' -> 66)."""
    found = VERSION_RE.findall(data_set_name)
    return int(found[-1]) if found else None


class _Importer:
    def __init__(self, workbook: Any, file_name: str) -> None:
        self.workbook = workbook
        self.file_name = file_name
        self.report = ReportBuilder(source=file_name, format=FORMAT)
        self.advisories: dict[str, str] = {}
        self.used_advisories: set[str] = set()
        self.drug_ids: dict[str, str] = {}
        self.drug_codes: dict[str, list[str]] = {}
        self.profiles: dict[str, str] = {}
        self.groups: dict[tuple[str, str, str, str, str], list[_Group]] = {}
        self.entry_concentrations: dict[str, list[Concentration]] = {}
        self.custom_drugs: set[tuple[str, AmountUnit]] = set()

    def run(self) -> ImportResult:
        name, hospital, status_text, data_set_id = self._properties()
        self._master_advisories()
        care_area_rows = self._care_areas()
        for sheet in (SECTION_CONT, SECTION_ANES, SECTION_INT):
            self._drug_section(sheet)
        self._fluids()
        self._pca_drugs({area.id: area for area in care_area_rows})
        entries = self._entries()
        drugs = self._drugs(entries)
        self._master_therapies(entries)
        labels = self._channel_labels()
        care_areas = tuple(replace(area, channel_labels=labels) for area in care_area_rows)
        syringes = self._syringes("Master Syringe List", "") + self._syringes(
            "Master PCA Syringe List", "PCA: "
        )
        self._advisory_rows()
        version = alaris_version(name)
        if version is None:
            self.report.note(f"data set name {name!r} carries no 'v<number>'; version set to 1")
        elif version == 0:
            self.report.note(
                f"data set name {name!r} carries version 0; version set to 1 (versions start at 1)"
            )
        self.report.note(
            "Version rule: the number after the last 'v' in the data set name ('Conway2024v66is' -> 66)."
        )
        self.report.note(
            f"Vendor status {status_text!r} is kept in the provenance; the imported library is a draft "
            "until it is reviewed and approved in smartpump."
        )
        library = DrugLibrary(
            name=name,
            version=version or 1,
            hospital_id=slug(hospital),
            drugs=drugs,
            care_areas=care_areas,
            entries=entries,
            status=LibraryStatus.DRAFT,
            provenance=Provenance(
                source=f"BD Alaris Guardrails data set {name}",
                imported_from=self.file_name,
                note=f"Hospital {hospital}; data set ID {data_set_id}; vendor status {status_text}",
                is_example=False,
            ),
            syringes=syringes,
        )
        library, flags = flag_high_alert(library, self.report, source_has_flags=False)
        return ImportResult(library=library, report=self.report.build(library, high_alert=flags))

    def _properties(self) -> tuple[str, str, str, str]:
        sheet = "Data Set Properties"
        if sheet not in self.workbook.sheetnames:
            raise LibraryFormatError(f"Alaris report has no sheet {sheet!r}", code="library.format_sheet")
        values: dict[str, str] = {}
        for number, row in enumerate(self.workbook[sheet].iter_rows(values_only=True), start=1):
            if number == 1:
                continue
            key = cell_text(row[0]).rstrip(":")
            values[key] = cell_text(row[1]) if len(row) > 1 else ""
            self.report.represented(sheet)
        name = values.get("Data Set Name", "")
        hospital = values.get("Hospital Name", "")
        if not name or not hospital:
            raise LibraryFormatError(
                "Data Set Properties lacks 'Data Set Name' or 'Hospital Name'",
                code="library.format_properties",
            )
        return name, hospital, values.get("Status", ""), values.get("Data Set ID", "")

    def _master_advisories(self) -> None:
        for row in sheet_rows(self.workbook, "Master Clinical Advisories"):
            self.advisories[row.text("Advisory Name")] = row.text("Advisory Text")

    def _advisory(self, name: str) -> str | None:
        """The advisory text an entry holds for ``name`` (the name itself when the master lacks it)."""
        if not name:
            return None
        return self.advisories.get(name, name)

    def _use_advisory(self, name: str) -> None:
        """Mark an advisory as held by an accepted row; note one the master list lacks."""
        if not name:
            return
        self.used_advisories.add(name)
        if name not in self.advisories:
            self.report.note(
                f"clinical advisory {name!r} is not in Master Clinical Advisories; kept as its name"
            )

    def _advisory_rows(self) -> None:
        for row in sheet_rows(self.workbook, "Master Clinical Advisories"):
            name = row.text("Advisory Name")
            if name in self.used_advisories:
                self.report.represented("Master Clinical Advisories")
            else:
                self.report.skip(
                    "Master Clinical Advisories",
                    row.number,
                    name,
                    "no entry or profile uses this advisory (advisories are held as text on entries)",
                )

    def _profile_id(self, profile: str) -> str:
        if profile not in self.profiles:
            self.profiles[profile] = slug(profile)
        return self.profiles[profile]

    def _config(self, sheet: str) -> dict[str, Row]:
        """The first row of each profile; a later row for the same profile is reported, not held."""
        config: dict[str, Row] = {}
        for row in sheet_rows(self.workbook, sheet):
            profile = row.text("Profile")
            held = config.get(profile)
            if held is None:
                config[profile] = row
            else:
                self.report.skip(
                    sheet, row.number, profile, f"duplicate row for the profile; row {held.number} is held"
                )
        return config

    def _care_areas(self) -> list[CareArea]:
        pc_unit = self._config("PC Unit Config")
        pump = self._config("Pump Config")
        pca = self._config("PCA Config")
        pause = self._config("PCA Pause Protocol")
        etco2 = self._config("EtCO2 Config")
        areas: list[CareArea] = []
        for profile, unit_row in pc_unit.items():
            device = DeviceDefaults()
            if profile in pump:
                try:
                    device = device_defaults(pump[profile])
                except SmartpumpError as error:
                    raise config_error("Pump Config", pump[profile], error) from None
            pca_settings = self._pca_settings(profile, pca, pause.get(profile), etco2)
            try:
                areas.append(self._care_area(profile, unit_row, device, pca_settings))
            except SmartpumpError as error:
                raise config_error("PC Unit Config", unit_row, error) from None
        for sheet, config in (
            ("PC Unit Config", pc_unit),
            ("Pump Config", pump),
            ("PCA Config", pca),
            ("PCA Pause Protocol", pause),
            ("EtCO2 Config", etco2),
        ):
            for profile, row in config.items():
                if profile in pc_unit:
                    self.report.represented(sheet)
                else:
                    self.report.skip(sheet, row.number, profile, "profile is not listed in PC Unit Config")
        self.report.note(
            "PC Unit Config: audio, display, anesthesia-mode, patient-ID, maintenance, tamper and "
            "authorized-user settings are device UI settings the model does not hold; patient weight/BSA "
            "maxima, the basic-infusion advisory are held."
        )
        self.report.note(
            "Pump Config: pressure-mode lock/selection and SEC-PRI audio alert are not held; the other "
            "columns are held as device defaults."
        )
        self.report.note(
            "PCA Config: dose request cord, module location enforcement, near-end-of-infusion, pressure "
            "limit, priming and security settings are not held; bolus delivery rate and max-dose window are."
        )
        self.report.note(
            "EtCO2 Config: only the PCA pause respiratory-rate initial value is held; the EtCO2 monitor "
            "alarm limits are monitor settings the model does not hold."
        )
        for sheet in ("Syringe Config", "Pump & Syringe Shared Config", "PCA & Syringe Shared Config"):
            for row in sheet_rows(self.workbook, sheet):
                self.report.skip(
                    sheet,
                    row.number,
                    row.text("Profile"),
                    "syringe/shared module settings (KVO option, near-end alerts, delay start, drug "
                    "calculation, syringe max rate, snooze) are not part of the model",
                )
        return areas

    def _care_area(
        self, profile: str, unit_row: Row, device: DeviceDefaults, pca_settings: PCASettings
    ) -> CareArea:
        advisory_on = enabled(unit_row.text("No Guardrails Basic Infusion Clinical Advisory"))
        message = unit_row.text("Clinical Advisory Message")
        return CareArea(
            id=self._profile_id(profile),
            name=profile,
            weight_kg=Bounds(limits=limits_of(hard_max=unit_row.number_of("Max Patient Weight (kg)"))),
            bsa_m2=Bounds(limits=limits_of(hard_max=unit_row.number_of("Max Patient BSA (m2)"))),
            max_rate_ml_per_h=device.max_rate_ml_per_h,
            basic_infusion=BasicInfusionPolicy(
                allowed=True, advisory=message if advisory_on and message.lower() != "n/a" else None
            ),
            device=device,
            pca=pca_settings,
        )

    def _pca_settings(
        self, profile: str, pca: dict[str, Row], pause: Row | None, etco2: dict[str, Row]
    ) -> PCASettings:
        """The profile's PCA settings; a PCA Config or EtCO2 Config row that cannot be read is reported
        (and dropped from ``pca``/``etco2`` so it is not counted as represented)."""
        pause_on = pause is not None and enabled(pause.text("PCA Pause Protocol Enabled"))
        message = pause.text("PCA Pause Protocol") if pause is not None and pause_on else None
        settings = PCASettings(
            pause_enabled=pause_on, pause_message=" ".join(message.split()) if message else None
        )
        etco2_row = etco2.get(profile)
        if etco2_row is not None and pause_on:
            try:
                resp_rate = etco2_row.number_of("PCA Pause Resp. Rate Initial Value (bpm)")
            except SmartpumpError as error:
                self.report.skip("EtCO2 Config", etco2_row.number, profile, error.message)
                del etco2[profile]
            else:
                settings = replace(settings, pause_resp_rate_min_bpm=resp_rate)
        pca_row = pca.get(profile)
        if pca_row is None:
            return settings
        try:
            window = (
                pca_window(pca_row.number_of("Time Window (h)"))
                if enabled(pca_row.text("Max Dose Limit"))
                else None
            )
            bolus_rate = pca_row.number_of("Bolus Delivery Rate (mL/h)")
        except SmartpumpError as error:
            self.report.skip("PCA Config", pca_row.number, profile, error.message)
            del pca[profile]
            return settings
        return replace(settings, bolus_delivery_rate_ml_per_h=bolus_rate, max_dose_window_h=window)

    def _drug_id(self, label: str) -> str:
        """The id ``label`` has, or would get if registered now; registers nothing."""
        found = self.drug_ids.get(label)
        if found is not None:
            return found
        base = slug(match_key(label))
        candidate, suffix = base, 2
        taken = set(self.drug_ids.values())
        while candidate in taken:
            candidate, suffix = f"{base}-{suffix}", suffix + 1
        return candidate

    def _register_drug(self, label: str) -> str:
        """Register ``label`` as a library drug (once) and return its id."""
        return self.drug_ids.setdefault(label, self._drug_id(label))

    def _drug_section(self, sheet: str) -> None:
        intermittent = sheet == SECTION_INT
        for row in sheet_rows(self.workbook, sheet):
            label = row.text("Drug Name")
            profile = row.text("Profile")
            if label == NO_DRUGS:
                self.report.skip(
                    sheet, row.number, profile, "placeholder row: no drugs in this section for the profile"
                )
                continue
            try:
                template, concentration, custom = (
                    self._intermittent_row(row) if intermittent else self._cont_row(row, sheet)
                )
            except SmartpumpError as error:
                self.report.skip(sheet, row.number, f"{profile} / {label}", error.message)
                continue
            self._add(sheet, row, label, template, concentration, custom)

    def _concentration(
        self,
        row: Row,
        conc_units_col: str,
        limit_cols: tuple[str, str, str],
        amount_col: str = "Drug Amount (- - = custom concentration)",
        volume_col: str = "Diluent Volume (- - = custom concentration)",
    ) -> tuple[Concentration | None, CustomConcentration | None]:
        amount_text = row.text(amount_col)
        unit_of_amount = amount_unit(row.text("Drug Amount Units"))
        if amount_text == CUSTOM:
            units_text = row.text(conc_units_col)
            if units_text.lower() in ("no", "n/a", ""):
                return None, CustomConcentration(unit=unit_of_amount)
            limits = limits_of(*(row.number_of(c) for c in limit_cols))
            return None, CustomConcentration(unit=per_ml_unit(units_text), limits=limits)
        if row.text("Diluent Volume Units") != "mL":
            raise LibraryFormatError(
                f"diluent volume unit {row.text('Diluent Volume Units')!r} is not mL",
                code="library.format_unit",
            )
        amount = row.number_of(amount_col)
        volume = row.number_of(volume_col)
        if amount is None or volume is None:
            raise LibraryFormatError(
                "drug amount or diluent volume is blank", code="library.format_concentration"
            )
        if row.text(conc_units_col).lower() not in ("n/a", ""):
            raise LibraryFormatError(
                "concentration limits on a fixed concentration cannot be represented",
                code="library.format_concentration",
            )
        return Concentration(amount, unit_of_amount, volume), None

    def _cont_row(
        self, row: Row, sheet: str
    ) -> tuple[Entry, Concentration | None, CustomConcentration | None]:
        concentration, custom = self._concentration(
            row,
            "Conc. Limit Units",
            ("Conc. Limits Hard Min", "Conc. Limits Soft Min", "Conc. Limits Soft Max"),
        )
        dose = DoseLimits(
            unit=DoseUnit.parse(row.text("Dosing Units")),
            limits=limits_of(
                soft_min=row.number_of("Dose Limits Soft Min"),
                soft_max=row.number_of("Dose Limits Soft Max"),
                hard_max=row.number_of("Dose Limits Hard Max"),
            ),
            default=row.number_of("Dose Initial Value"),
        )
        bolus = self._dose_limits(
            row, "Bolus Dose Units", "Bolus Dose Limits", "Bolus Dose Limits Initial Value"
        )
        bolus_rate = self._dose_limits(
            row,
            "Bolus Dose Admin. Rate Units",
            "Bolus Dose Admin. Rate Limits",
            "Bolus Dose Admin. Rate Initial Value",
        )
        template = Entry(
            id="",
            care_area_id=self._profile_id(row.text("Profile")),
            drug_id=self._drug_id(row.text("Drug Name")),
            dose=dose,
            mode=DeliveryMode.CONTINUOUS,
            therapy=row.text("Therapy Name") or None,
            devices=devices_of(row.text("Module Availability")),
            bolus=bolus,
            bolus_rate=bolus_rate,
            advisory=self._advisory(row.text("Clinical Advisory")),
            provenance=f"Alaris {sheet}",
        )
        return template, concentration, custom

    def _dose_limits(self, row: Row, unit_col: str, prefix: str, initial_col: str) -> DoseLimits | None:
        unit_text = row.text(unit_col)
        if not unit_text:
            return None
        return DoseLimits(
            unit=DoseUnit.parse(unit_text),
            limits=limits_of(
                soft_min=row.number_of(f"{prefix} Soft Min"),
                soft_max=row.number_of(f"{prefix} Soft Max"),
                hard_max=row.number_of(f"{prefix} Hard Max"),
            ),
            default=row.number_of(initial_col),
        )

    def _intermittent_row(self, row: Row) -> tuple[Entry, Concentration | None, CustomConcentration | None]:
        concentration, custom = self._concentration(
            row, "Conc. Units", ("Conc. Limits Hard Min", "Conc. Limits Soft Min", "Conc. Limits Soft Max")
        )
        prefix = "Duration Limits (hh:mm)"
        duration = Bounds(
            limits=limits_of(
                hard_min=hhmm_minutes(row.values.get(f"{prefix} Hard Min"), what="duration hard min"),
                soft_min=hhmm_minutes(row.values.get(f"{prefix} Soft Min"), what="duration soft min"),
                soft_max=hhmm_minutes(row.values.get(f"{prefix} Soft Max"), what="duration soft max"),
            ),
            default=hhmm_minutes(
                row.values.get("Duration (hh:mm) Initial Value"), what="duration initial value"
            ),
        )
        available = row.text("Available As").lower()
        template = Entry(
            id="",
            care_area_id=self._profile_id(row.text("Profile")),
            drug_id=self._drug_id(row.text("Drug Name")),
            dose=DoseLimits(
                unit=DoseUnit.parse(row.text("Dosing Units")),
                limits=limits_of(
                    soft_min=row.number_of("Dose Limits Soft Min"),
                    soft_max=row.number_of("Dose Limits Soft Max"),
                    hard_max=row.number_of("Dose Limits Hard Max"),
                ),
            ),
            mode=DeliveryMode.INTERMITTENT,
            therapy=row.text("Therapy Name") or None,
            devices=devices_of(row.text("Module Availability")),
            duration_min=duration,
            allows_secondary="secondary" in available,
            advisory=self._advisory(row.text("Clinical Advisory")),
            provenance=f"Alaris {SECTION_INT}",
        )
        return template, concentration, custom

    def _fluids(self) -> None:
        for row in sheet_rows(self.workbook, SECTION_FLUIDS):
            label = row.text("Fluid Name")
            profile = row.text("Profile")
            try:
                if row.text("Rate Units") != "mL/h":
                    raise LibraryFormatError(f"rate unit {row.text('Rate Units')!r} is not mL/h")
                prefix = "Rate Limits (mL/h)"
                limits = limits_of(
                    soft_min=row.number_of(f"{prefix} Soft Min"),
                    soft_max=row.number_of(f"{prefix} Soft Max"),
                    hard_max=row.number_of(f"{prefix} Hard Max"),
                )
                template = Entry(
                    id="",
                    care_area_id=self._profile_id(profile),
                    drug_id=self._drug_id(label),
                    dose=DoseLimits(unit=ML_PER_H, limits=limits),
                    kind=EntryKind.IV_FLUID,
                    mode=DeliveryMode.RATE,
                    therapy=row.text("Therapy Name") or None,
                    devices=devices_of(row.text("Module Availability")),
                    rate_ml_per_h=Bounds(limits=limits),
                    allows_secondary=row.text("Supports Secondary (Y/N)").upper() == "Y",
                    advisory=self._advisory(row.text("Clinical Advisory")),
                    provenance=f"Alaris {SECTION_FLUIDS}",
                )
            except SmartpumpError as error:
                self.report.skip(SECTION_FLUIDS, row.number, f"{profile} / {label}", error.message)
                continue
            self._add(SECTION_FLUIDS, row, label, template, None, None)

    def _pca_drugs(self, areas: dict[str, CareArea]) -> None:
        for row in sheet_rows(self.workbook, SECTION_PCA):
            label, profile = row.text("Drug Name"), row.text("Profile")
            if label == NO_DRUGS:
                self.report.skip(
                    SECTION_PCA,
                    row.number,
                    profile,
                    "placeholder row: no drugs in this section for the profile",
                )
                continue
            try:
                template, concentration, custom = self._pca_row(row, areas)
            except SmartpumpError as error:
                self.report.skip(SECTION_PCA, row.number, f"{profile} / {label}", error.message)
                continue
            self._add(SECTION_PCA, row, label, template, concentration, custom)
        self.report.note(
            "PCA Drugs: 'Max Accumulated Lockout' and 'Supports PCA Pause Protocol' are not held per entry "
            "(the PCA pause protocol is the profile's); every PCA dose is in the row's dosing unit, the "
            "continuous (basal) dose in that unit per hour, and the max-dose window is the profile's."
        )

    def _pca_row(
        self, row: Row, areas: dict[str, CareArea]
    ) -> tuple[Entry, Concentration | None, CustomConcentration | None]:
        """A PCA Drugs row as a PCA entry (demand, lockout, basal, clinician bolus, loading, max dose)."""
        concentration, custom = self._concentration(
            row,
            "Conc. Units",
            ("Conc. Limits Hard Min", "Conc. Limits Soft Min", "Conc. Limits Soft Max"),
            amount_col="Drug Amount",
            volume_col="Diluent Volume",
        )
        unit = row.text("Dosing Units")

        def dose(prefix: str, unit_text: str, *, initial: bool = True) -> DoseLimits | None:
            bounds = [row.number_of(f"{prefix} {b}") for b in ("Soft Min", "Soft Max", "Hard Max")]
            default = row.number_of(f"{prefix} Initial Value") if initial else None
            if all(b is None for b in bounds) and default is None:
                return None
            limits = limits_of(soft_min=bounds[0], soft_max=bounds[1], hard_max=bounds[2])
            return DoseLimits(unit=DoseUnit.parse(unit_text), limits=limits, default=default)

        demand = dose("PCA Dose Limits", unit)
        if demand is None:
            raise LibraryFormatError("a PCA row without PCA dose limits", code="library.format_pca")
        lockout = "Lock Out Interval (minutes)"
        care_area_id = self._profile_id(row.text("Profile"))
        area = areas.get(care_area_id)
        pca = PCALimits(
            demand_dose=demand,
            lockout_min=Bounds(
                limits=limits_of(
                    hard_min=row.number_of(f"{lockout} Hard Min"),
                    soft_min=row.number_of(f"{lockout} Soft Min"),
                    soft_max=row.number_of(f"{lockout} Soft Max"),
                ),
                default=row.number_of(f"{lockout} Initial Value"),
            ),
            basal=dose("Continuous Dose Limits", f"{unit}/h"),
            loading_dose=dose("Loading Dose Limits", unit, initial=False),
            clinician_bolus=dose("Bolus Dose Limits", unit, initial=False),
            max_dose=dose("Max Accumulated Dose Range", unit),
            max_dose_window_h=None if area is None else area.pca.max_dose_window_h,
        )
        template = Entry(
            id="",
            care_area_id=care_area_id,
            drug_id=self._drug_id(row.text("Drug Name")),
            dose=demand,
            mode=DeliveryMode.PCA,
            therapy=row.text("Therapy Name") or None,
            pca=pca,
            advisory=self._advisory(row.text("Clinical Advisory")),
            provenance=f"Alaris {SECTION_PCA}",
        )
        return template, concentration, custom

    def _add(
        self,
        sheet: str,
        row: Row,
        label: str,
        template: Entry,
        concentration: Concentration | None,
        custom: CustomConcentration | None,
    ) -> None:
        """Hold an accepted row: its drug and advisory are registered only now, never for a refused row."""
        self._register_drug(label)
        self._use_advisory(row.text("Clinical Advisory"))
        key = (
            template.care_area_id,
            SECTION_IDS[sheet],
            template.drug_id,
            slug(template.therapy or ""),
            slug(str(template.dose.unit)),
        )
        groups = self.groups.setdefault(key, [])
        target = next(
            (g for g in groups if g.template == template and (custom is None or g.custom is None)), None
        )
        if target is None:
            target = _Group(template=template)
            groups.append(target)
        if concentration is not None:
            target.concentrations.append(concentration)
        if custom is not None:
            target.custom = custom
            self.custom_drugs.add((template.drug_id, custom.unit))
        self.report.represented(sheet)

    def _entries(self) -> tuple[Entry, ...]:
        entries: list[Entry] = []
        for key, groups in self.groups.items():
            for index, group in enumerate(groups, start=1):
                entry_id = ".".join((*key, str(index)))
                entries.append(
                    replace(
                        group.template,
                        id=entry_id,
                        concentrations=tuple(group.concentrations),
                        custom_concentration=group.custom,
                    )
                )
        return tuple(entries)

    def _drugs(self, entries: tuple[Entry, ...]) -> tuple[Drug, ...]:
        used_strengths: dict[str, list[Concentration]] = {}
        for entry in entries:
            used_strengths.setdefault(entry.drug_id, []).extend(entry.concentrations)
        for sheet, name_col in (("Master Drugs", "Drug Name"), ("Master Fluids", "Fluid Name")):
            for row in sheet_rows(self.workbook, sheet):
                label = row.text(name_col)
                codes = self.drug_codes.setdefault(label, [])
                codes.extend(
                    c.strip() for c in row.text("Aliases").split(",") if c.strip() not in ("", *codes)
                )
                drug_id = self._register_drug(label)
                reason = (
                    self._master_concentration_reason(row.text("Concentration"), drug_id, used_strengths)
                    if sheet == "Master Drugs"
                    else None
                )
                if reason is None:
                    self.report.represented(sheet)
                else:
                    self.report.skip(sheet, row.number, f"{label} {row.text('Concentration')}", reason)
        self.report.note(
            "Master Drugs 'Used As' is not held: an entry's delivery mode says how a drug is used."
        )
        return tuple(
            Drug(
                id=drug_id,
                generic_name=label,
                display_name=label,
                ehr_codes=tuple(self.drug_codes.get(label, ())),
            )
            for label, drug_id in self.drug_ids.items()
        )

    def _master_concentration_reason(
        self, text: str, drug_id: str, used: dict[str, list[Concentration]]
    ) -> str | None:
        """None when the formulary concentration is held by some entry, else why it is not."""
        if not text:
            return None
        match = MASTER_CONC_RE.match(text)
        if match is None:
            return f"formulary concentration {text!r} is not in a recognised form"
        try:
            unit = amount_unit(match["unit"])
        except SmartpumpError as error:
            return error.message
        if match["amount"] == "---" and match["volume"] == "---":
            if any(d == drug_id for d, _ in self.custom_drugs):
                return None
            return "custom concentration of the formulary is used by no profile entry"
        if "---" in (match["amount"], match["volume"]):
            return f"formulary concentration {text!r} mixes a fixed and a custom ('---') part"
        try:
            concentration = Concentration(
                master_number(match["amount"], "amount"), unit, master_number(match["volume"], "volume")
            )
        except SmartpumpError as error:
            return f"formulary concentration {text!r}: {error.message}"
        if any(
            c.same_strength(concentration) and c.volume_ml == concentration.volume_ml
            for c in used.get(drug_id, ())
        ):
            return None
        return "formulary concentration is used by no profile entry (concentrations are held on entries)"

    def _master_therapies(self, entries: tuple[Entry, ...]) -> None:
        used = {e.therapy for e in entries if e.therapy}
        for row in sheet_rows(self.workbook, "Master Therapies"):
            therapy = row.text("Therapy")
            if therapy in used:
                self.report.represented("Master Therapies")
            else:
                self.report.skip("Master Therapies", row.number, therapy, "therapy is used by no entry")

    def _channel_labels(self) -> tuple[str, ...]:
        labels: list[str] = []
        for row in sheet_rows(self.workbook, "Channel Labels"):
            values = [cell_text(v) for k, v in row.values.items() if k != "Line Item"]
            labels.extend(v for v in values if v)
            self.report.represented("Channel Labels")
        self.report.sheet("Channel Labels")
        if not labels:
            self.report.note("Channel Labels: channel labels are not used in this data set.")
        return tuple(labels)

    def _syringes(self, sheet: str, prefix: str) -> tuple[str, ...]:
        included: list[str] = []
        for row in sheet_rows(self.workbook, sheet):
            column = next((k for k in row.values if k.endswith("Syringe Type")), None)
            if column is None:
                raise LibraryFormatError(
                    f"{sheet} has no '... Syringe Type' column (columns {list(row.values)})",
                    code="library.format_columns",
                )
            name = row.text(column)
            if row.text("Included?").lower() == "true":
                included.append(prefix + name)
                self.report.represented(sheet)
            else:
                self.report.skip(sheet, row.number, name, "syringe is not included in the data set")
        return tuple(included)
