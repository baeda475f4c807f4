#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the inetd2systemd developers; MIT License (SPDX-License-Identifier: MIT)

from __future__ import annotations

DOCUMENTATION = r"""
module: migration
short_description: Migrate a host from inetd/xinetd to systemd socket units
version_added: 0.1.0
description:
  - Runs C(inetd2systemd import) on the managed host, which reads everything the legacy
    superserver did (C(inetd.conf), C(xinetd.conf) with its includes, the host's
    C(/etc/services), C(hosts.allow) and C(hosts.deny)) and writes the C(.socket) and
    C(.service) units, a report, C(summary.json), C(install.sh) and C(rollback.sh) into
    O(output_dir).
  - O(state=present) switches the host. The import is planned in a private temporary
    directory first; when the units it would install are already installed, nothing is
    done (C(changed=false)). When the import reports an error (a service not converted, a
    preflight error such as a host without cgroup v2, or a program the legacy
    configuration names missing, whose socket would stay stopped), the module fails before
    anything is switched and leaves the host as it was, unless O(allow_incomplete=true).
    Otherwise it runs C(install.sh), which stops the legacy superserver and starts the
    sockets; when C(install.sh) fails, the module runs C(rollback.sh) before failing.
  - O(state=absent) runs C(rollback.sh), which stops and removes the installed units and
    brings the legacy superserver back exactly as it was (enabled and running or not).
  - O(state=checked) records the equivalence transcript only (C(inetd2systemd import
    --check)); it switches nothing and reports C(changed=false).
  - Check mode reports the plan (status, units and access of each service) and the findings
    and changes nothing. Diff mode shows the unit files that are installed, replaced or
    removed.
  - The options that shape the import (O(root), O(prefix), O(flavor), O(include_disabled),
    O(systemd_version), O(target_root), O(port_check), O(harden), O(dynamic_user),
    O(suite_path)) are passed to
    C(inetd2systemd import) as its options of the same name; give the same values to
    every state.
author:
  - inetd2systemd developers (@inetd2systemd)
requirements:
  - inetd2systemd on the managed host (see O(executable)).
  - systemd as the managed host's init system.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  state:
    description:
      - V(present) migrates the host, V(absent) rolls it back, V(checked) records the
        equivalence transcript only.
    type: str
    choices: [present, absent, checked]
    default: present
  root:
    description:
      - The legacy configuration to read, C(inetd2systemd import)'s C(ROOT) - the host
        itself (V(/)), a copy of its root, or its C(/etc).
    type: path
    default: /
  output_dir:
    description:
      - Where the import's units, report, C(summary.json), transcripts and scripts are
        kept on the managed host. O(state=absent) runs the C(rollback.sh) found here.
    type: path
    default: /var/lib/inetd2systemd/migration
  executable:
    description:
      - The C(inetd2systemd) command on the managed host, as a name looked up on E(PATH)
        or an absolute path.
    type: str
    default: inetd2systemd
  prefix:
    description:
      - Prefix for every unit name (C(--prefix)).
    type: str
    default: ''
  flavor:
    description:
      - The C(inetd.conf) dialect (C(--flavor)); by default the one the host's
        C(/etc/default) names.
    type: str
    choices: [openbsd, inetutils, freebsd, netbsd, busybox, xinetd-compat]
  include_disabled:
    description:
      - Convert disabled services too (C(--include-disabled)); their sockets are installed
        but not started.
    type: bool
    default: false
  systemd_version:
    description:
      - The systemd version the units are written for (C(--systemd-version)); by default
        the managed host's.
    type: int
  target_root:
    description:
      - Root of the system the units will run on (C(--target-root)); the programs the
        services need are looked for under it.
    type: path
    default: /
  port_check:
    description:
      - Run the import's ports-in-use preflight; V(false) passes C(--no-port-check).
    type: bool
    default: true
  harden:
    description:
      - How far the service units are sandboxed (C(--harden)); by default the import's
        own default. Needs an C(inetd2systemd) whose C(import) has C(--harden).
    type: str
    choices: [auto, basic, strict, none]
  dynamic_user:
    description:
      - Run the services that ran as C(nobody) as a user of their own (C(--dynamic-user),
        C(DynamicUser=yes)). Needs an C(inetd2systemd) whose C(import) has it.
    type: bool
    default: false
  suite_path:
    description:
      - How the units run C(inetd2systemd) itself, for its built-in services
        (C(--suite-path)); by default the bare name. Needs an C(inetd2systemd) whose
        C(import) has it.
    type: str
  phase:
    description:
      - For O(state=checked), which transcript to record (C(--check)). V(auto) records
        V(before) while the legacy superserver serves and V(after) once the host is
        migrated. V(before) on a migrated host records nothing and keeps the transcript
        taken before the switch.
    type: str
    choices: [auto, before, after]
    default: auto
  sources:
    description:
      - Client source addresses the transcript is recorded from (C(--source), one each).
    type: list
    elements: str
    default: []
    aliases: [source]
  probes:
    description:
      - What to send to each program service in the transcript (the content of
        C(--probes FILE)), service id -> C(send), C(read), C(wait). Internal services have
        their own.
    type: dict
  allow_incomplete:
    description:
      - Switch even when the import reports an error; services that were not converted
        are left out and sockets whose programs are missing stay stopped.
    type: bool
    default: false
  unit_dir:
    description:
      - Where C(install.sh) puts the units (its E(UNIT_DIR)).
    type: path
    default: /etc/systemd/system
  state_dir:
    description:
      - Where C(install.sh) records what C(rollback.sh) restores (its E(STATE_DIR)); a
        host is migrated while this holds an C(installed) mark.
    type: path
    default: /var/lib/inetd2systemd/import-rollback
notes:
  - The module needs root on the managed host (C(become)) for O(state=present) and
    O(state=absent).
  - Recording a transcript (O(state=checked)) connects to every service, in check mode too.
"""

EXAMPLES = r"""
- name: Show what would change (run with --check --diff)
  inetd2systemd.fleet.migration:
    state: present

- name: Record what clients see from the legacy superserver
  inetd2systemd.fleet.migration:
    state: checked
    sources: [127.0.0.2]
    probes:
      git: {send: "002dgit-upload-pack /proj.git\u0000host=localhost\u0000"}

- name: Switch to the systemd sockets, with hardened units
  inetd2systemd.fleet.migration:
    state: present
    harden: strict
  register: migrated

- name: Services whose sockets did not start
  ansible.builtin.debug:
    msg: "{{ ansible_facts.inetd2systemd.services | dict2items | rejectattr('value.started') | map(attribute='key') }}"

- name: Put the legacy superserver back as it was
  inetd2systemd.fleet.migration:
    state: absent
"""

RETURN = r"""
migrated:
  description: Whether the host runs the systemd sockets (C(install.sh) state present) after this task.
  returned: always
  type: bool
  sample: true
output_dir:
  description: Where the import's output is kept on the managed host.
  returned: always
  type: str
  sample: /var/lib/inetd2systemd/migration
counts:
  description: The import's counts (services, converted, approximated, failed, disabled, units, errors, warnings, ...).
  returned: when the import ran
  type: dict
  sample: {"services": 6, "converted": 4, "approximated": 2, "failed": 0, "disabled": 0}
services:
  description:
    - Per service id, what becomes of it; the same dict is set as the fact C(ansible_facts.inetd2systemd.services).
    - C(started) (whether all its sockets are active) is there when the host is migrated.
  returned: when the import ran
  type: dict
  sample: {"git": {"status": "converted", "units": ["git.socket", "git@.service"], "allow": ["127.0.0.2"],
           "exact": true, "programs": ["/usr/bin/git"], "missing_programs": [], "findings": [], "started": true}}
findings:
  description: "The import's errors and warnings, preflight included, as C(file:line: severity [service]: message)."
  returned: when the import ran
  type: list
  elements: str
problems:
  description: What keeps O(state=present) from switching (empty when nothing does).
  returned: when the import ran
  type: list
  elements: str
  sample: ["finger: program /usr/sbin/in.fingerd is missing: its socket would stay stopped"]
summary:
  description: The import's C(summary.json).
  returned: when the import ran
  type: dict
phase:
  description: The transcript that was recorded (O(state=checked)).
  returned: when O(state=checked)
  type: str
  sample: after
equivalence:
  description: One row per service and client source, with the transcripts before and after and the import's verdict.
  returned: when O(state=checked)
  type: list
  elements: dict
  sample: [{"service": "echo", "source": "127.0.0.2", "verdict": "same", "before": {"outcome": "answered"}, "after": {"outcome": "answered"}}]
differs:
  description: The rows of RV(equivalence) whose verdict is DIFFERS, what a client would notice.
  returned: when O(state=checked)
  type: list
  elements: dict
legacy:
  description: The legacy superserver units C(rollback.sh) restored, with their state afterwards.
  returned: when O(state=absent) rolled back
  type: dict
  sample: {"openbsd-inetd.service": "active"}
stdout:
  description: What C(install.sh) or C(rollback.sh) printed.
  returned: when a script ran
  type: str
stderr:
  description: What C(install.sh) or C(rollback.sh) printed on standard error.
  returned: when a script ran
  type: str
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

# inetd2systemd's exit statuses (inetd2systemd.errors): 1 = written, with findings to
# read (a warning or an error); the summary says which.
EXIT_INCOMPLETE = 1
# install.sh's (docs/migration.md): 1 = switched, but the sockets whose programs are
# missing were left stopped, which allow_incomplete accepts.
INSTALL_LEFT_STOPPED = 1


# -- running inetd2systemd import --------------------------------------------------------


def import_argv(module, output_dir, extra=()):
    """The `inetd2systemd import` command line for the module's options."""
    p = module.params
    argv = [module.params['executable'], 'import', p['root'], '--output-dir', output_dir,
            '--target-root', p['target_root']]
    if p['prefix']:
        argv += ['--prefix', p['prefix']]
    if p['flavor']:
        argv += ['--flavor', p['flavor']]
    if p['include_disabled']:
        argv.append('--include-disabled')
    if p['systemd_version'] is not None:
        argv += ['--systemd-version', str(p['systemd_version'])]
    if not p['port_check']:
        argv.append('--no-port-check')
    if p['harden'] is not None:
        argv += ['--harden', p['harden']]
    if p['dynamic_user']:
        argv.append('--dynamic-user')
    if p['suite_path'] is not None:
        argv += ['--suite-path', p['suite_path']]
    return argv + list(extra)


def newer_flags(params):
    """The import options given that older versions of import do not have."""
    return [flag for flag, given in (('--harden', params['harden'] is not None),
                                     ('--dynamic-user', params['dynamic_user']),
                                     ('--suite-path', params['suite_path'] is not None)) if given]


def run_import(module, output_dir, extra=()):
    """Run the import; its exit status when it wrote its output (0, or 1 = incomplete)."""
    rc, out, err = module.run_command(import_argv(module, output_dir, extra))
    if rc not in (0, EXIT_INCOMPLETE) or not os.path.isfile(os.path.join(output_dir, 'summary.json')):
        module.fail_json(msg='inetd2systemd import failed (exit %d): %s' % (rc, err.strip() or out.strip()),
                         rc=rc, stdout=out, stderr=err)
    return rc


def locate_executable(module):
    exe = module.params['executable']
    if os.path.isabs(exe):
        if not os.access(exe, os.X_OK):
            module.fail_json(msg='%s is not an executable' % exe)
        found = exe
    else:
        found = module.get_bin_path(exe, required=True)
    wanted = newer_flags(module.params)
    if wanted:
        rc, out, err = module.run_command([found, 'import', '--help'])
        missing = [flag for flag in wanted if flag not in out]
        if missing:
            module.fail_json(msg='this inetd2systemd (%s) has no import %s' % (found, ' '.join(missing)))
    module.params['executable'] = found


def plan(module):
    """Import into a private directory: (exit status, directory, summary, units)."""
    directory = os.path.join(module.tmpdir, 'plan')
    rc = run_import(module, directory)
    return rc, directory, read_json(os.path.join(directory, 'summary.json')), read_units(directory)


# -- reading what is there ---------------------------------------------------------------


def read_text(path):
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except (IOError, OSError):
        return None


def read_json(path):
    text = read_text(path)
    return None if text is None else json.loads(text)


def read_units(directory):
    units_dir = os.path.join(directory, 'units')
    return dict((name, read_text(os.path.join(units_dir, name))) for name in sorted(os.listdir(units_dir)))


def installed_units(module):
    """name -> text of the units install.sh installed, or None when the host is not migrated."""
    state_dir = module.params['state_dir']
    if not os.path.exists(os.path.join(state_dir, 'installed')):
        return None
    names = (read_text(os.path.join(state_dir, 'units')) or '').split()
    return dict((name, read_text(os.path.join(module.params['unit_dir'], name))) for name in names)


def current_files(module, names):
    return dict((name, read_text(os.path.join(module.params['unit_dir'], name))) for name in names)


def unit_diff(module, before, after):
    """Ansible's diff entries, one per unit file that changes."""
    entries = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name) or '', after.get(name) or ''
        if old != new:
            path = os.path.join(module.params['unit_dir'], name)
            entries.append({'before_header': path if old else '%s (absent)' % path,
                            'after_header': path if new else '%s (removed)' % path,
                            'before': old, 'after': new})
    return entries


def active_states(module, units):
    """unit -> ActiveState, from one systemctl call."""
    if not units:
        return {}
    systemctl = module.get_bin_path('systemctl', required=True)
    rc, out, err = module.run_command([systemctl, 'is-active'] + list(units))
    states = out.split()
    return dict(zip(units, states + ['unknown'] * (len(units) - len(states))))


# -- what the import says ----------------------------------------------------------------


def finding_text(finding):
    who = ' [%s]' % finding['service'] if finding.get('service') else ''
    return '%s:%s: %s%s: %s' % (finding['file'], finding['line'], finding['severity'], who, finding['message'])


def missing_programs(module, service):
    root = module.params['target_root']
    return [p for p in service.get('programs', [])
            if not os.access(os.path.join(root, p.lstrip('/')), os.X_OK)]


def service_results(module, summary, active=None):
    results = {}
    for s in summary['services']:
        result = {'status': s['status'], 'units': s['units'], 'allow': s['allow'], 'exact': s['exact'],
                  'daemon': s['daemon'], 'programs': s.get('programs', []),
                  'missing_programs': missing_programs(module, s),
                  'findings': [finding_text(f) for f in s['findings'] if f['severity'] != 'info']}
        if active is not None:
            sockets = [u for u in s['units'] if u.endswith('.socket')]
            result['started'] = bool(sockets) and all(active.get(u) == 'active' for u in sockets)
        results[s['id']] = result
    return results


def findings(summary):
    every = [f for s in summary['services'] for f in s['findings']] + summary['findings'] + summary['preflight']
    return [finding_text(f) for f in every if f['severity'] != 'info']


def problems(module, summary, rc):
    """What keeps the host from being switched: the import's errors, and programs whose
    sockets install.sh would leave stopped (a service the legacy host offered would go)."""
    found = []
    for s in summary['services']:
        if s['status'] == 'failed':
            why = [f['message'] for f in s['findings'] if f['severity'] == 'error']
            found.append('%s: not converted%s' % (s['id'], ': ' + why[0] if why else ''))
        elif s['status'] != 'disabled' and s['units']:
            found += ['%s: program %s is missing: its socket would stay stopped' % (s['id'], p)
                      for p in missing_programs(module, s)]
    # a service the reader left out (its entry is in error) has no plan, only findings
    found += ['%s: not converted: %s' % (f['service'], f['message']) if f.get('service') else finding_text(f)
              for f in summary['findings'] if f['severity'] == 'error']
    found += ['preflight: ' + finding_text(f) for f in summary['preflight'] if f['severity'] == 'error']
    # 1 also means approximated (warnings only), which does not keep a host from switching
    counts = summary['counts']
    failing = counts['failed'] or counts['errors'] or counts['preflight_errors']
    if rc == EXIT_INCOMPLETE and not found and failing:
        found.append('inetd2systemd import reported the migration incomplete (see report.md)')
    return found


def report(module, summary, rc, active=None):
    services = service_results(module, summary, active)
    return {'counts': summary['counts'], 'services': services, 'findings': findings(summary),
            'problems': problems(module, summary, rc), 'summary': summary}


def facts(module, migrated, result):
    return {'inetd2systemd': {'migrated': migrated, 'output_dir': module.params['output_dir'],
                              'counts': result.get('counts', {}), 'services': result.get('services', {})}}


# -- changing the host -------------------------------------------------------------------


def adopt(plan_dir, output_dir):
    """Make the planned import the output directory, keeping the transcripts recorded
    there; the old directory is replaced in one rename."""
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    staging = tempfile.mkdtemp(prefix='.%s.' % os.path.basename(output_dir), dir=parent)
    try:
        new = os.path.join(staging, 'new')
        shutil.copytree(plan_dir, new, symlinks=True)
        transcripts = os.path.join(output_dir, 'transcripts')
        if os.path.isdir(transcripts):
            shutil.copytree(transcripts, os.path.join(new, 'transcripts'), symlinks=True)
        os.chmod(new, 0o755)
        if os.path.lexists(output_dir):
            os.rename(output_dir, os.path.join(staging, 'old'))
        os.rename(new, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_script(module, name):
    """Run OUTPUT_DIR/NAME (install.sh or rollback.sh) with the module's directories."""
    script = os.path.join(module.params['output_dir'], name)
    if not os.path.isfile(script):
        module.fail_json(msg='%s is missing: the host was not migrated from %s' % (script, module.params['output_dir']))
    env = {'UNIT_DIR': module.params['unit_dir'], 'STATE_DIR': module.params['state_dir']}
    return module.run_command([script], environ_update=env)


def is_migrated(module):
    return os.path.exists(os.path.join(module.params['state_dir'], 'installed'))


def roll_back(module, why, **result):
    rc, out, err = run_script(module, 'rollback.sh')
    if rc != 0:
        module.fail_json(msg='%s; rollback.sh failed too (exit %d): %s' % (why, rc, err.strip()),
                         stdout=out, stderr=err, migrated=is_migrated(module), **result)
    return out, err


# -- the states --------------------------------------------------------------------------


def present(module):
    p = module.params
    rc, plan_dir, summary, planned = plan(module)
    installed = installed_units(module)
    if installed == planned:
        active = active_states(module, [u for u in planned if u.endswith('.socket')])
        result = report(module, summary, rc, active)
        module.exit_json(changed=False, migrated=True, output_dir=p['output_dir'],
                         ansible_facts=facts(module, True, result), **result)
    result = report(module, summary, rc)
    before = current_files(module, set(planned) | set(installed or {}))
    diff = unit_diff(module, before, planned)
    if result['problems'] and not p['allow_incomplete']:
        if not module.check_mode and installed is None:
            adopt(plan_dir, p['output_dir'])  # nothing is switched; the report stays on the host
        module.fail_json(msg='not switched: ' + '; '.join(result['problems']), changed=False,
                         migrated=installed is not None, output_dir=p['output_dir'],
                         ansible_facts=facts(module, installed is not None, result), **result)
    if module.check_mode:
        module.exit_json(changed=True, migrated=installed is not None, output_dir=p['output_dir'],
                         diff=diff, ansible_facts=facts(module, installed is not None, result), **result)
    if installed is not None:  # installed from another plan: put it back before the new one
        roll_back(module, 'replacing the installed units', **result)
    adopt(plan_dir, p['output_dir'])
    rc, out, err = run_script(module, 'install.sh')
    if rc != 0 and not (rc == INSTALL_LEFT_STOPPED and p['allow_incomplete']):
        why = 'install.sh failed (exit %d): %s' % (rc, err.strip())
        if is_migrated(module):
            roll_back(module, why, **result)
            why += '; the host was put back as it was'
        module.fail_json(msg=why, changed=True, migrated=False, stdout=out, stderr=err,
                         output_dir=p['output_dir'], **result)
    active = active_states(module, [u for u in planned if u.endswith('.socket')])
    result = report(module, summary, 0, active)
    module.exit_json(changed=True, migrated=True, output_dir=p['output_dir'], stdout=out, stderr=err,
                     diff=diff, ansible_facts=facts(module, True, result), **result)


def absent(module):
    p = module.params
    installed = installed_units(module)
    if installed is None:
        module.exit_json(changed=False, migrated=False, output_dir=p['output_dir'])
    backups = os.path.join(p['state_dir'], 'backup')
    restored = dict((name, read_text(os.path.join(backups, name))) for name in installed)
    diff = unit_diff(module, installed, restored)
    legacy = [line.split()[0] for line in (read_text(os.path.join(p['state_dir'], 'legacy')) or '').splitlines()
              if line.strip()]
    if module.check_mode:
        module.exit_json(changed=True, migrated=True, output_dir=p['output_dir'], diff=diff,
                         legacy=dict((u, 'restored') for u in legacy))
    out, err = roll_back(module, 'rolling back')
    module.exit_json(changed=True, migrated=False, output_dir=p['output_dir'], diff=diff, stdout=out,
                     stderr=err, legacy=active_states(module, legacy),
                     ansible_facts={'inetd2systemd': {'migrated': False, 'output_dir': p['output_dir']}})


def checked(module):
    p = module.params
    migrated = is_migrated(module)
    phase = p['phase'] if p['phase'] != 'auto' else ('after' if migrated else 'before')
    if phase == 'before' and migrated:
        summary = read_json(os.path.join(p['output_dir'], 'summary.json')) or {}
        rows = summary.get('equivalence', [])
        module.exit_json(changed=False, migrated=True, phase=phase, output_dir=p['output_dir'],
                         msg='already migrated: the transcript recorded before the switch is kept',
                         equivalence=rows, differs=differing(rows), summary=summary)
    if module.check_mode:  # the transcript is recorded in a private copy
        rc, workdir, summary, planned = plan(module)
        transcripts = os.path.join(p['output_dir'], 'transcripts')
        if os.path.isdir(transcripts):
            shutil.copytree(transcripts, os.path.join(workdir, 'transcripts'))
    else:
        workdir = p['output_dir']
        if not os.path.isdir(os.path.join(workdir, 'units')):
            run_import(module, workdir, ['--force'])
    extra = ['--check', phase]
    for source in p['sources']:
        extra += ['--source', source]
    if p['probes']:
        probes = os.path.join(module.tmpdir, 'probes.json')
        with open(probes, 'w', encoding='utf-8') as f:
            json.dump(p['probes'], f)
        extra += ['--probes', probes]
    run_import(module, workdir, extra)
    summary = read_json(os.path.join(workdir, 'summary.json'))
    rows = summary.get('equivalence', [])
    result = report(module, summary, 0)
    result.pop('problems')
    module.exit_json(changed=False, migrated=migrated, phase=phase, output_dir=p['output_dir'],
                     equivalence=rows, differs=differing(rows), **result)


def differing(rows):
    return [r for r in rows if r['verdict'].startswith('DIFFERS')]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='present', choices=['present', 'absent', 'checked']),
            root=dict(type='path', default='/'),
            output_dir=dict(type='path', default='/var/lib/inetd2systemd/migration'),
            executable=dict(type='str', default='inetd2systemd'),
            prefix=dict(type='str', default=''),
            flavor=dict(type='str', choices=['openbsd', 'inetutils', 'freebsd', 'netbsd', 'busybox', 'xinetd-compat']),
            include_disabled=dict(type='bool', default=False),
            systemd_version=dict(type='int'),
            target_root=dict(type='path', default='/'),
            port_check=dict(type='bool', default=True),
            harden=dict(type='str', choices=['auto', 'basic', 'strict', 'none']),
            dynamic_user=dict(type='bool', default=False),
            suite_path=dict(type='str'),
            phase=dict(type='str', default='auto', choices=['auto', 'before', 'after']),
            sources=dict(type='list', elements='str', default=[], aliases=['source']),
            probes=dict(type='dict'),
            allow_incomplete=dict(type='bool', default=False),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            state_dir=dict(type='path', default='/var/lib/inetd2systemd/import-rollback'),
        ),
        supports_check_mode=True,
    )
    if module.params['state'] != 'absent':
        locate_executable(module)
    {'present': present, 'absent': absent, 'checked': checked}[module.params['state']](module)


if __name__ == '__main__':
    main()
