"""One Policy object in memory for every workflow that read the same policy.

Each workflow that reads the policy gets its own deserialised copy: about 175 KB of Python
objects for the shipped policy (29 KB of JSON). A storm of 500 open incidents held 500 equal
copies, most of the worker's growth in memory (BENCHMARKS.md, scenario 6). Workflows only
read their policy (a change is a new file, read by new runs), so equal copies can share one.

The result equals the argument, so a workflow behaves the same whether or not it got the
shared object: sharing is invisible to determinism and to replay.
"""

from __future__ import annotations

from zerotouch.policy import Policy

# A few recent versions: while a new policy file rolls out, old and new runs both find theirs.
RECENT_VERSIONS = 4

_recent: tuple[Policy, ...] = ()


def shared_policy(policy: Policy) -> Policy:
    """The object already held for a policy equal to ``policy``, else ``policy`` (remembered)."""
    global _recent
    recent = _recent  # one read: workflow tasks run in threads, a concurrent swap only costs a copy
    for known in recent:
        if known is policy or known == policy:
            return known
    _recent = (policy, *recent[: RECENT_VERSIONS - 1])
    return policy
