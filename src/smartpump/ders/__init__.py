"""Dose error reduction: pure checks of an infusion program against the drug library."""
