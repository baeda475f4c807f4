"""`inetd2systemd convert`: pipeline.py does the conversion (shared with `import` and the
generator), cli.py is the sub-command."""
