"""The fleet electrification compliance checker, in layers that import only downwards.

- base/      models, database, settings, vocabularies, identifiers, periods, audit, the translation seam
- domain/    agencies, acquisitions, exemptions, users, timeliness (with rules/ and imports/ beside it)
- read/      figures, charts, reports and the monthly mail, computed from the domain
- web/, cli/, jobs: delivery, the pages, commands and background work that users reach

`.importlinter` at the project root states the layers; `make test` checks them.
"""
