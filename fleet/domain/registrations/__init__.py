"""The registration record (SPEC §3.4): the traffic police's extracts, loaded (load), their owners
matched to agencies (owners), and the self-reports checked against them (reconcile, figures)."""
