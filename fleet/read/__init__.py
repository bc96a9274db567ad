"""Read side: figures, charts, reports and mail computed from the domain; nothing here changes a record but its own send log."""
