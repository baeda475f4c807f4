"""Configuration readers: inetd.conf, xinetd, /etc/services, tcp_wrappers."""
