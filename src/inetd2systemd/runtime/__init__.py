"""What runs inside activated processes: listen_fds, notify, internal services."""
