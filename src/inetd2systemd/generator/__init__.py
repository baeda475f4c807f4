"""Generator mode: inetd.conf and xinetd.conf stay the source of truth, and systemd runs
what they say at every boot and daemon-reload (systemd.generator(7)).

- `generate`: what the generator makes of a host's files (units, links, and why a file
  or a unit is left out), shared by the program and `inetd2systemd generator status`;
- `legacy`: whether xinetd or an inetd is enabled for a file, and which native units
  take precedence over generated ones;
- `kmsg`: logging as generators must, to /dev/kmsg;
- `program`: the `inetd2systemd-generator` executable;
- `cli`: `inetd2systemd generator enable|disable|status`.

The program runs at every boot and reload: nothing here imports more than it needs
(no argparse, no subprocess on the generator's path).
"""
