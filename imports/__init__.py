"""Excel import: a straight pipeline of small modules (imports/README.md).

package (unusable-file checks) -> read (cells, header row, columns) -> normalise (values) -> validation,
report and commit. template writes the upload template the reader understands.
"""
