"""The hospital server: persistence, API, users and roles, audit chain, library lifecycle, fleet."""
