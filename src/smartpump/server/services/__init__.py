"""Use cases: each takes a session, a clock and the caller's access, checks, acts, audits and commits."""
