"""The monthly e-mail: recipients.py decides who gets which message, summaries.py what it tells them,
render.py words it, message.py puts it in MIME with its report, send.py delivers it and records.py
remembers what went out; fleet.cli.mail runs it."""
