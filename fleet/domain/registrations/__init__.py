"""The registration record: the traffic police's extracts of new registrations, loaded (load), their owners
matched to agencies (owners), and the self-reports checked against them (reconcile, figures)."""
