"""Service -> systemd unit text, and installing units."""
