"""Where no sandbox can be made, bash_exec is not offered and a call answers
`sandbox_unavailable`: nothing runs unsandboxed. The host is made such for real, by running the
worker's code in a user namespace that may create no other (as under Docker's default seccomp
profile, user namespaces are refused)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_no_user_namespaces_means_no_bash_exec(tmp_path):
    script = (f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} "
              f"-m tests.support.no_sandbox_host {tmp_path}")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"this host cannot make the test's own user namespace: {done.stderr.strip()}")
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["available"] is False and "user namespaces" in outcome["reason"]
    assert "bash_exec" not in outcome["offered"] and "write_workspace_file" in outcome["offered"]
    assert outcome["refusal"]["code"] == "sandbox_unavailable" and "no sandbox" in outcome["refusal"]["message"]
    assert outcome["ran"] is False
