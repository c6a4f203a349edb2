"""What a node recovery will do, one line per action: the dry run's answer and what an approver approves."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.durations import format_duration
    from zerotouch.node_recovery_models import OWNER_ANNOTATION, NodeView
    from zerotouch.recovery_nodes import NodeRecoveryPolicy


def workloads_of(view: NodeView) -> list[str]:
    """namespace/Kind/name of the controllers whose pods the drain evicts (bare pods come back nowhere)."""
    return sorted({f"{p.namespace}/{p.owner}" for p in view.pods if p.owner and not p.daemonset})


def plan_lines(view: NodeView, policy: NodeRecoveryPolicy, owner: str) -> list[str]:
    evicted = [p for p in view.pods if not p.daemonset]
    kept = len(view.pods) - len(evicted)
    lines = [
        f"take a node lease from the Governor (at least {policy.min_schedulable} of {view.total_nodes} nodes stay "
        f"schedulable; at most {policy.max_concurrent_node_actions} node action(s) at once)",
        f"cordon {view.node} ({OWNER_ANNOTATION}={owner})",
        f"evict {len(evicted)} pod(s) through the Eviction API, retrying PodDisruptionBudget refusals every "
        f"{format_duration(policy.eviction_retry)} for up to {format_duration(policy.drain_timeout)}",
    ]
    for pod in evicted:
        budget = f"; PDB {pod.pdb} allows {pod.disruptions_allowed} disruption(s) now" if pod.pdb else ""
        owner_of = pod.owner or "a bare pod: nothing recreates it"
        lines.append(f"  evict {pod.ref} ({owner_of}{', not Ready' if not pod.ready else ''}{budget})")
    if kept:
        lines.append(f"leave {kept} DaemonSet pod(s) on the node")
    workloads = workloads_of(view)
    lines.append(f"wait up to {format_duration(policy.healthy_timeout)} for {len(workloads)} workload(s) to run "
                 "healthy on other nodes")
    if policy.provider == "none":
        lines.append("no node provider: escalate for a person to repair or replace the node")
    else:
        lines.append(f"ask the {policy.provider} provider to {policy.action} {view.node}")
    lines += [f"wait up to {format_duration(policy.ready_timeout)} for {view.node} to be Ready",
              f"uncordon {view.node} and release the lease"]
    return lines
