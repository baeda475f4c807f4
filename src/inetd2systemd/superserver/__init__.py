"""The fallback superserver (inetd2systemd serve)."""
