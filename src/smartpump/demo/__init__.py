"""The demo: a simulated fleet of real ``Pump`` objects wired to a server through its transport (not part of
``server/``; the server sees it only through ``server.simulated.SimulatedFleet``)."""
