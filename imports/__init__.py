"""Excel import: a straight pipeline of small modules (SPEC §3, issue 3).

package (unusable-file checks) -> read (cells, header row, columns) -> normalise (values) -> validation,
report and commit. template writes the upload template the reader understands.
"""
