"""One conformance suite: a table of cases drives the invariants for every adapter."""
