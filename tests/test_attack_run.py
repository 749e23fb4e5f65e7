"""The scripted insider attack (devtools/attack_run.py) against a running stack that requires a
login: identity downgrade, another leader's conversation, typed payload commands, 50 MB bodies,
60 parallel wrong logins, CPR numbers in every shape - and then every store, log and the
trainers' review sheet read back. Every check must hold (issue 14)."""
from __future__ import annotations

from devtools import attack_run


def test_the_insider_attack_run_finds_no_hole(stack):
    target = attack_run.Target(
        rasa=stack.rasa_url, web=stack.web_url, emulator=stack.emulator_url,
        var_dir=stack.var_dir, log_dir=stack.log_dir, api_token=stack.api_token,
        identity_key=stack.identity_key,
    )
    findings = attack_run.run(target)
    failed = [f"{f.attack}: {f.detail}" for f in findings if not f.ok]
    assert len(findings) >= 17 and not failed, "\n".join(failed)
