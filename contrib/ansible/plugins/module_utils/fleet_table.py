# -*- coding: utf-8 -*-
# Copyright: the inetd2systemd developers; MIT License (SPDX-License-Identifier: MIT)
"""The fleet report: every host's `inetd2systemd import` summary.json in one table.

Plain Python (no Ansible import), so that it reads the same from a module or a test.
The directory holds one folder per host, named after it:

    DIR/HOST/summary.json    the import's summary (fetched from the host's output dir)
    DIR/HOST/outcome.json    optional: {"outcome": "migrated", "detail": "..."} from the role

One row per host: what its services became (exact, approximated, left out) and the
errors and warnings, the preflight's included, each with the service it concerns.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os

# (key, heading) in the order the CSV and the HTML show them
COLUMNS = (
    ('host', 'host'),
    ('outcome', 'outcome'),
    ('services', 'services'),
    ('exact', 'exact'),
    ('approximated', 'approximated'),
    ('left_out', 'left out'),
    ('disabled', 'disabled'),
    ('stricter', 'access stricter'),
    ('errors', 'errors'),
    ('warnings', 'warnings'),
    ('findings', 'findings'),
)
KEYS = tuple(key for key, heading in COLUMNS)


def _notable(summary):
    """(service or '', finding) for every error and warning, preflight included."""
    found = []
    for service in summary.get('services', []):
        found += [(service.get('id', ''), f) for f in service.get('findings', [])]
    for key in ('preflight', 'findings'):
        found += [(f.get('service') or '', f) for f in summary.get(key, [])]
    return [(sid, f) for sid, f in found if f.get('severity') in ('error', 'warning')]


def host_row(host, summary, outcome=None):
    counts = summary.get('counts', {})
    notable = _notable(summary)
    outcome = outcome or {}
    shown = outcome.get('outcome', '')
    if outcome.get('detail'):
        shown += ': ' + outcome['detail']
    return {
        'host': host,
        'outcome': shown,
        'services': counts.get('services', 0),
        'exact': counts.get('converted', 0),
        'approximated': counts.get('approximated', 0),
        'left_out': counts.get('failed', 0),
        'disabled': counts.get('disabled', 0),
        'stricter': counts.get('stricter', 0),
        'errors': sum(1 for sid, f in notable if f['severity'] == 'error'),
        'warnings': sum(1 for sid, f in notable if f['severity'] == 'warning'),
        'findings': ['%s%s: %s' % ('[%s] ' % sid if sid else '', f['severity'], f.get('message', ''))
                     for sid, f in notable],
    }


def _read_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def gather(directory):
    """One row per DIR/HOST/summary.json, sorted by host; a summary that cannot be read
    is a row saying so rather than a missing host."""
    rows = []
    for host in sorted(os.listdir(directory)):
        folder = os.path.join(directory, host)
        path = os.path.join(folder, 'summary.json')
        if not os.path.isfile(path):
            continue
        try:
            outcome = _read_json(os.path.join(folder, 'outcome.json'))
        except (OSError, ValueError):
            outcome = None
        try:
            rows.append(host_row(host, _read_json(path), outcome if isinstance(outcome, dict) else None))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            rows.append(host_row(host, {}, {'outcome': 'unreadable summary.json', 'detail': str(exc)}))
    return rows


def _cell(value):
    """A CSV cell; text that a spreadsheet would take for a formula is quoted with '."""
    if isinstance(value, list):
        value = '\n'.join(value)
    if isinstance(value, str) and value[:1] in ('=', '+', '-', '@', '\t', '\r'):
        return "'" + value
    return value


def to_csv(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(KEYS)
    for row in rows:
        writer.writerow([_cell(row[key]) for key in KEYS])
    return out.getvalue()


_CSS = ('body{font-family:system-ui,sans-serif;margin:2em;color:#222}'
        'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}'
        'td.n{text-align:right}tr.stopped{background:#fdd}tr.migrated{background:#dfd}ul{margin:0;padding-left:1.2em}')


def to_html(rows):
    e = html.escape
    totals = dict((key, sum(r[key] for r in rows)) for key in
                  ('services', 'exact', 'approximated', 'left_out', 'disabled', 'errors', 'warnings'))
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<title>inetd2systemd fleet report</title><style>%s</style></head><body>' % _CSS,
           '<h1>inetd2systemd fleet report</h1>',
           '<p>%d hosts, %d services: %d exact, %d approximated, %d left out, %d disabled; '
           '%d errors, %d warnings.</p>' % ((len(rows),) + tuple(totals[k] for k in (
               'services', 'exact', 'approximated', 'left_out', 'disabled', 'errors', 'warnings'))),
           '<table><tr>%s</tr>' % ''.join('<th>%s</th>' % e(heading) for key, heading in COLUMNS)]
    for row in rows:
        cells = []
        for key in KEYS:
            value = row[key]
            if key == 'findings':
                items = ''.join('<li>%s</li>' % e(text) for text in value)
                cells.append('<td>%s</td>' % ('<details><summary>%d</summary><ul>%s</ul></details>'
                                              % (len(value), items) if value else ''))
            elif isinstance(value, int):
                cells.append('<td class="n">%d</td>' % value)
            else:
                cells.append('<td>%s</td>' % e(value))
        state = row['outcome'].split(':')[0]
        out.append('<tr class="%s">%s</tr>' % (e(state, quote=True), ''.join(cells)))
    out.append('</table></body></html>\n')
    return '\n'.join(out)
