"""The syslog listener (inetd2systemd syslogd)."""
