"""`inetd2systemd import`: a whole legacy host migrated in one go.

plan.py reads the host and decides what each service becomes; preflight.py checks the
target host; output.py writes the units, report.py the report, scripts.py the install
and rollback scripts; probe.py records the before/after client transcripts; cli.py is
the sub-command.
"""

from .plan import Migration, ServicePlan, fold_access, locate_etc, plan_migration
from .probe import Probe, compare, record_transcripts, transcript
from .output import write_output
from .scripts import install_script, rollback_script

__all__ = ["Migration", "ServicePlan", "plan_migration", "fold_access", "write_output",
           "install_script", "rollback_script", "transcript", "record_transcripts", "compare",
           "Probe", "locate_etc"]
