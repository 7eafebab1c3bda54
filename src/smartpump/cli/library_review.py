"""`smartpump library lint|diff|sign|verify` and `smartpump keys generate`: a pharmacist reviewer's tools."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Final

import typer
from rich import box
from rich.table import Table

from smartpump.cli.library import keys_app, library_app
from smartpump.cli.output import console, emit_json, fail
from smartpump.errors import LibraryFormatError, SignatureError, SigningKeyError
from smartpump.keyfiles import read_private_key, read_public_key, write_private_key, write_public_key
from smartpump.library import signing
from smartpump.library.diff import Change, ChangeKind, diff, format_value
from smartpump.library.formats.library_file import read_library
from smartpump.library.lint import RULES_BY_ID, Finding, LintOptions, RateRange, Severity, has_errors, lint
from smartpump.library.model import DrugLibrary
from smartpump.pump.capabilities import CAPABILITIES
from smartpump.units import format_decimal, round_half_up

EXIT_FINDINGS: Final = 1
EXIT_REFUSED: Final = 1
_SEVERITY_STYLE: Final = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_LIMIT_ORDER_TEXT: Final = "must be ordered"
_FACTOR_RESOLUTION: Final = Decimal("0.01")

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of a table.")]


def _read_library(path: Path) -> DrugLibrary:
    """The library in a JSON or smartpump .xlsx file, or exit 2 with the reason."""
    try:
        return read_library(path)
    except LibraryFormatError as error:
        fail(f"{path}: {error.message}", code=error.code)


def _read_for_lint(path: Path) -> tuple[DrugLibrary | None, list[Finding]]:
    """The library, or its format problems as findings; exit 2 when the file is no library at all."""
    try:
        return read_library(path), []
    except LibraryFormatError as error:
        if error.code in ("library.unreadable", "library.file_kind"):
            fail(error.message, code=error.code)
        return None, format_findings(error)


def format_findings(error: LibraryFormatError) -> list[Finding]:
    """A file's format problems as error findings: ``lint.limits.order`` for limits out of order,
    ``lint.format`` for everything else; ``where`` is the document location."""
    findings = []
    for problem in error.problems or (error.message,):
        where, _, message = problem.partition(": ")
        if not message:
            where, message = "file", problem
        rule = "lint.limits.order" if _LIMIT_ORDER_TEXT in message else "lint.format"
        findings.append(Finding(rule=rule, severity=Severity.ERROR, where=where, message=message))
    return findings


def pump_rate_ranges() -> LintOptions:
    """Lint options holding the rate range of every simulated pump model, by channel type."""
    return LintOptions(
        rate_ranges=tuple(
            RateRange(
                device_type=capabilities.device_type,
                min_ml_per_h=capabilities.min_rate_ml_per_h,
                max_ml_per_h=capabilities.max_rate_ml_per_h,
            )
            for capabilities in CAPABILITIES.values()
        )
    )


@dataclass(frozen=True, slots=True)
class RuleCount:
    """How many findings one rule produced, with its severity and description."""

    rule: str
    severity: Severity
    count: int
    description: str


def rule_counts(findings: list[Finding]) -> list[RuleCount]:
    """Findings counted per rule, most severe first, then most frequent, then by rule id."""
    counts = Counter(f.rule for f in findings)
    severities = {f.rule: f.severity for f in findings}
    rows = [
        RuleCount(
            rule=rule,
            severity=severities[rule],
            count=count,
            description=RULES_BY_ID[rule].description if rule in RULES_BY_ID else "File format problem.",
        )
        for rule, count in counts.items()
    ]
    return sorted(rows, key=lambda r: (r.severity.rank, -r.count, r.rule))


def _summary_table(rows: list[RuleCount]) -> Table:
    table = Table(title="Lint summary (by rule)", box=box.SIMPLE_HEAD)
    table.add_column("severity", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("what it means", overflow="fold", ratio=1)
    for row in rows:
        style = _SEVERITY_STYLE[row.severity]
        table.add_row(row.severity.value, str(row.count), row.rule, row.description, style=style)
    return table


def _print_details(rows: list[RuleCount], findings: list[Finding]) -> None:
    for row in rows:
        console.print(
            f"{row.severity.value.upper()} {row.rule} ({row.count})",
            style=_SEVERITY_STYLE[row.severity],
            markup=False,
            soft_wrap=True,
        )
        for finding in findings:
            if finding.rule == row.rule:
                console.print(f"  {finding.where}: {finding.message}", markup=False, soft_wrap=True)


@library_app.command("lint")
def lint_command(
    file: Annotated[Path, typer.Argument(help="Library: .json (canonical) or .xlsx (smartpump export).")],
    severity: Annotated[
        Severity,
        typer.Option("--severity", help="Show findings of this severity and worse: error, warning or info."),
    ] = Severity.INFO,
    summary_only: Annotated[
        bool, typer.Option("--summary", help="Print only the counts per rule, not each finding.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Check a library for consistency and ISMP problems: counts per rule first, then the findings
    grouped by rule. Exit 1 when any error is found (whatever --severity shows)."""
    library, format_problems = _read_for_lint(file)
    findings = format_problems if library is None else lint(library, pump_rate_ranges())
    counts = {s.value: sum(1 for f in findings if f.severity is s) for s in Severity}
    shown = [f for f in findings if f.severity.rank <= severity.rank]
    rows = rule_counts(shown)
    if json_output:
        emit_json(
            {
                "file": str(file),
                "counts": counts,
                "severity": severity.value,
                "by_rule": rows,
                "findings": [] if summary_only else shown,
            }
        )
    elif findings:
        totals = ", ".join(f"{name}: {n}" for name, n in counts.items())
        console.print(f"{file}: {totals}", soft_wrap=True, markup=False, highlight=False)
        if rows:
            console.print(_summary_table(rows))
        if not summary_only:
            _print_details(rows, shown)
    else:
        console.print(f"{file}: no findings", soft_wrap=True, markup=False)
    if has_errors(findings):
        raise typer.Exit(EXIT_FINDINGS)


def _factor_text(change: Change) -> str:
    if change.factor is None:
        return ""
    return f"x{format_decimal(round_half_up(change.factor, _FACTOR_RESOLUTION))}"


_WHOLE_MARK: Final = {ChangeKind.ADDED: ("+", "green"), ChangeKind.REMOVED: ("-", "red")}


def _print_change_group(where: str, changes: list[Change]) -> None:
    """One object's changes: a +/- line for a whole object, else a table of its parameters."""
    if changes[0].is_whole_object:
        mark, style = _WHOLE_MARK[changes[0].kind]
        console.print(f"{mark} {where}", style=style, markup=False, soft_wrap=True)
        return
    console.print(f"~ {where}", style="bold", markup=False, soft_wrap=True)
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("parameter", no_wrap=True)
    for column in ("old", "new"):
        table.add_column(column, overflow="fold")
    table.add_column("factor", no_wrap=True, justify="right")
    for change in changes:
        table.add_row(
            "!" if change.flagged else "",
            change.parameter,
            format_value(change.old),
            format_value(change.new),
            _factor_text(change),
            style="bold red" if change.flagged else None,
        )
    console.print(table)


@library_app.command("diff")
def diff_command(
    old: Annotated[Path, typer.Argument(help="Older library: .json or smartpump .xlsx.")],
    new: Annotated[Path, typer.Argument(help="Newer library: .json or smartpump .xlsx.")],
    json_output: JsonOption = False,
) -> None:
    """Show what changed between two library versions; limit changes beyond x2 / x0.5 are flagged."""
    result = diff(_read_library(old), _read_library(new))
    summary = result.summary()
    if json_output:
        emit_json(
            {
                "old_version": result.old_version,
                "new_version": result.new_version,
                "summary": summary,
                "changes": result.changes,
            }
        )
        return
    console.print(f"Library v{result.old_version} -> v{result.new_version}", style="bold")
    for where, group in itertools.groupby(result.changes, key=lambda change: change.where):
        _print_change_group(where, list(group))
    if not result.changes:
        console.print("no differences")
    console.print(
        f"entries: {summary.entries_added} added, {summary.entries_removed} removed, "
        f"{summary.entries_changed} changed; drugs: {summary.drugs_added} added, {summary.drugs_removed} "
        f"removed, {summary.drugs_changed} changed; care areas: {summary.care_areas_added} added, "
        f"{summary.care_areas_removed} removed, {summary.care_areas_changed} changed; "
        f"{summary.limit_changes} limit changes, {summary.flagged} flagged",
        soft_wrap=True,
    )


@library_app.command("sign")
def sign_command(
    file: Annotated[Path, typer.Argument(help="Library to sign: .json or smartpump .xlsx.")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Signed library file to write.")],
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Key id recorded in the signature (default: key fingerprint)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
) -> None:
    """Sign a library's canonical bytes with an Ed25519 private key."""
    library = _read_library(file)
    if output.exists() and not force:
        fail(f"{output} exists (use --force to overwrite)", code="cli.exists")
    try:
        private_pem = read_private_key(key)
        if key_id is None:
            key_id = signing.key_fingerprint(signing.public_key_of(private_pem))
        signed = signing.sign(library, private_pem, key_id)
    except SignatureError as error:
        fail(error.message, code=error.code)
    output.write_text(signed.to_json(), encoding="utf-8")
    console.print(
        f"signed {library.name} v{library.version} ({library.hospital_id}) with key {key_id} -> {output}",
        markup=False,
        soft_wrap=True,
    )


@library_app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="Signed library file.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="Trusted Ed25519 public key (PEM).")],
    installed_version: Annotated[
        int | None,
        typer.Option("--installed-version", help="Installed version; the signed one must be newer."),
    ] = None,
    hospital: Annotated[
        str | None, typer.Option("--hospital", help="Hospital the library must be for.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a signed library as a pump would: signature, hospital, anti-rollback (exit 1 when refused)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read signed library {file}: {error}", code="cli.unreadable")
    try:
        public_pem = read_public_key(public_key)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    try:
        signed = signing.SignedLibrary.from_json(text)
        library = signing.verify(
            signed, public_pem, installed_version=installed_version, hospital_id=hospital
        )
    except SignatureError as error:
        if json_output:
            emit_json({"verified": False, "code": error.code, "message": error.message})
        else:
            console.print(
                f"REFUSED [{error.code}]: {error.message}", style="bold red", markup=False, soft_wrap=True
            )
        raise typer.Exit(EXIT_REFUSED) from None
    result = {
        "verified": True,
        "name": library.name,
        "version": library.version,
        "hospital_id": library.hospital_id,
        "key_id": signed.key_id,
        "is_example": library.provenance.is_example,
    }
    if json_output:
        emit_json(result)
    else:
        console.print(
            f"verified: {library.name} v{library.version} for {library.hospital_id}, "
            f"signed by key {signed.key_id}",
            style="green",
            markup=False,
            soft_wrap=True,
        )


@keys_app.command("generate")
def generate_command(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Directory for the key files.")],
    name: Annotated[str, typer.Option("--name", help="Key file name stem.")] = "library-signing",
    json_output: JsonOption = False,
) -> None:
    """Generate an Ed25519 key pair: NAME.key.pem (private, mode 0600) and NAME.pub.pem."""
    if not name or Path(name).name != name:
        fail(f"key name must be a plain file name, got {name!r}", code="cli.invalid")
    private_path = out_dir / f"{name}.key.pem"
    public_path = out_dir / f"{name}.pub.pem"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing:
        fail(f"refusing to overwrite {', '.join(existing)}", code="cli.exists")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        private_pem, public_pem = signing.generate_keypair()
        write_private_key(private_path, private_pem)
        write_public_key(public_path, public_pem)
    except OSError as error:
        fail(f"cannot write keys in {out_dir}: {error.strerror}", code="cli.unwritable")
    key_id = signing.key_fingerprint(public_pem)
    if json_output:
        emit_json({"key_id": key_id, "private_key": str(private_path), "public_key": str(public_path)})
    else:
        console.print(
            f"key {key_id}: private {private_path} (0600), public {public_path}", markup=False, soft_wrap=True
        )
