"""The monthly e-mail: summaries.py decides who is told what, send.py delivers and records, cli.py runs it."""
