#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the inetd2systemd developers; MIT License (SPDX-License-Identifier: MIT)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Gather the hosts' inetd2systemd import summaries into one table
version_added: 0.1.0
description:
  - Reads C(SRC/HOST/summary.json) (the C(summary.json) of C(inetd2systemd import) on each
    host, gathered on the machine this runs on) and, when there, C(SRC/HOST/outcome.json)
    (what the C(inetd2systemd.fleet.migrate) role did on that host), and writes one table,
    a row per host, as CSV and/or HTML - host, outcome, services, exact, approximated,
    left out, disabled, services whose access became stricter, errors, warnings, and
    the findings themselves.
  - Usually run on the controller (delegated to C(localhost)); the role does that after
    every batch.
author:
  - inetd2systemd developers (@inetd2systemd)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  src:
    description:
      - The directory with one folder per host.
    type: path
    required: true
  csv:
    description:
      - The CSV file to write (one row per host; the findings cell holds one per line).
    type: path
  html:
    description:
      - The HTML file to write (needs no network to view).
    type: path
"""

EXAMPLES = r"""
- name: Gather each host's summary
  ansible.builtin.fetch:
    src: /var/lib/inetd2systemd/migration/summary.json
    dest: fleet/{{ inventory_hostname }}/summary.json
    flat: true

- name: One table for the whole fleet
  inetd2systemd.fleet.fleet_report:
    src: fleet
    html: fleet/report.html
    csv: fleet/report.csv
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
hosts:
  description: How many hosts the table has.
  returned: always
  type: int
  sample: 3
rows:
  description: The table, one dict per host (the CSV's columns).
  returned: always
  type: list
  elements: dict
  sample: [{"host": "alpha", "outcome": "migrated", "services": 4, "exact": 4, "approximated": 0,
            "left_out": 0, "disabled": 0, "stricter": 0, "errors": 0, "warnings": 0, "findings": []}]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inetd2systemd.fleet.plugins.module_utils.fleet_table import gather, to_csv, to_html


def write_if_changed(module, path, text):
    """Write `text` to `path` unless it holds exactly that; whether it (would have) changed."""
    try:
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
    except (IOError, OSError):
        pass
    if module.check_mode:
        return True
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.fleet-report.', dir=directory)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, os.path.abspath(path))
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            csv=dict(type='path'),
            html=dict(type='path'),
        ),
        required_one_of=[('csv', 'html')],
        supports_check_mode=True,
    )
    src = module.params['src']
    if not os.path.isdir(src):
        module.fail_json(msg='%s is not a directory' % src)
    rows = gather(src)
    changed = False
    if module.params['csv']:
        changed |= write_if_changed(module, module.params['csv'], to_csv(rows))
    if module.params['html']:
        changed |= write_if_changed(module, module.params['html'], to_html(rows))
    module.exit_json(changed=changed, hosts=len(rows), rows=rows)


if __name__ == '__main__':
    main()
