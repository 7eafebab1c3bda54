"""Simulation on top of the pump runtime: timed scenarios played in virtual time."""
