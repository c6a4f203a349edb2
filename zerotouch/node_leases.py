"""The capacity budget: the Governor's node leases, decided as pure functions of (book, settings, request, now).

A node recovery takes a lease before it cordons a node and gives it back after the uncordon. The
Governor refuses a lease that would leave fewer schedulable nodes than the policy's minimum, or one
beyond the concurrent node actions allowed. A lease lives `node_lease_ttl` past its last renewal: a
holder that vanished (its workflow terminated, its history lost) stops renewing and the lease lapses,
so a dead holder cannot block node recovery forever (Kured's lock held by a node that no longer existed).
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.governor_models import GovernorBook, GovernorSettings, JournalEntry
from zerotouch.node_lease_models import NodeLease, NodeLeaseDecision, NodeLeaseRenewal, NodeLeaseRequest
from zerotouch.recovery_nodes import min_schedulable_nodes

JOURNAL_SIZE = 200


def live(book: GovernorBook, now: datetime) -> dict[str, NodeLease]:
    """The leases in force at `now`; an expired one no longer counts, whether or not it was dropped yet."""
    return {node: lease for node, lease in book.node_leases.items() if lease.expires_at > now}


def decide_lease(book: GovernorBook, settings: GovernorSettings, request: NodeLeaseRequest,
                 now: datetime) -> NodeLeaseDecision:
    """Grant, renew or refuse a node lease; a probe decides the same way and changes nothing."""
    leases = live(book, now)
    minimum = min_schedulable_nodes(settings.node_min_schedulable, request.total_nodes)
    after = len(set(request.schedulable) - {request.node} - set(leases))
    ttl = settings.node_lease_ttl

    def refuse(code: str, reason: str) -> NodeLeaseDecision:
        return NodeLeaseDecision.model_validate({"granted": False, "code": code, "reason": reason,
                                                 "schedulable_after": after, "min_schedulable": minimum})

    held = leases.get(request.node)
    if held is not None and held.holder != request.holder:
        return refuse("held_by_other", f"node {request.node} is leased by {held.holder} until "
                                       f"{held.expires_at.isoformat(timespec='seconds')}")
    if held is not None:  # the holder asking again (a retried activity, a restarted run): the same lease
        if not request.probe:
            held.expires_at = now + ttl
        return NodeLeaseDecision(granted=True, code="held", reason=f"node {request.node} is already leased to "
                                 f"{request.holder}", lease_id=held.lease_id, expires_at=now + ttl,
                                 schedulable_after=after, min_schedulable=minimum)
    if len(leases) >= settings.node_max_concurrent:
        return refuse("max_concurrent", f"{len(leases)} node action(s) already under way "
                                        f"({', '.join(sorted(leases))}); the policy allows "
                                        f"{settings.node_max_concurrent} at once")
    if after < minimum:
        return refuse("min_schedulable", f"cordoning {request.node} would leave {after} schedulable node(s) of "
                                         f"{request.total_nodes}; the policy keeps at least {minimum} "
                                         f"({settings.node_min_schedulable})")
    lease_id = f"lease-{book.next_lease}"
    if not request.probe:
        book.next_lease += 1
        _drop_expired(book, now)
        book.node_leases[request.node] = NodeLease(node=request.node, holder=request.holder, lease_id=lease_id,
                                                   acquired_at=now, expires_at=now + ttl)
        _journal(book, now, request.holder, "node lease taken", f"{request.node}: {after} schedulable after")
    return NodeLeaseDecision(granted=True, code="granted", reason=f"node {request.node} may be cordoned: {after} "
                             f"schedulable node(s) remain, at least {minimum} required", lease_id=lease_id,
                             expires_at=now + ttl, schedulable_after=after, min_schedulable=minimum)


def renew_lease(book: GovernorBook, settings: GovernorSettings, renewal: NodeLeaseRenewal, now: datetime) -> str:
    """The holder's heartbeat. A lease that lapsed while its holder was away is taken again only if the
    concurrency limit still allows it; the holder learns of a lost lease when it asks again."""
    held = live(book, now).get(renewal.node)
    if held is not None:
        if held.holder != renewal.holder:
            return f"renewal of {renewal.node} by {renewal.holder} ignored: leased by {held.holder}"
        held.expires_at = now + settings.node_lease_ttl
        return f"lease of {renewal.node} renewed by {renewal.holder}"
    _drop_expired(book, now)
    if len(book.node_leases) >= settings.node_max_concurrent:
        _journal(book, now, renewal.holder, "node lease lost", f"{renewal.node}: expired, and no room to take it again")
        return f"lease of {renewal.node} had expired and cannot be taken again"
    book.node_leases[renewal.node] = NodeLease(node=renewal.node, holder=renewal.holder,
                                               lease_id=f"lease-{book.next_lease}", acquired_at=now,
                                               expires_at=now + settings.node_lease_ttl)
    book.next_lease += 1
    _journal(book, now, renewal.holder, "node lease retaken", f"{renewal.node}: it had expired")
    return f"lease of {renewal.node} had expired; taken again by {renewal.holder}"


def release_lease(book: GovernorBook, renewal: NodeLeaseRenewal, now: datetime) -> str:
    """Give the lease back (after the uncordon, or when nothing was changed); only its holder can."""
    held = book.node_leases.get(renewal.node)
    if held is None or held.holder != renewal.holder:
        _drop_expired(book, now)
        return f"{renewal.holder} holds no lease on {renewal.node}"
    del book.node_leases[renewal.node]
    _drop_expired(book, now)
    _journal(book, now, renewal.holder, "node lease released", renewal.node)
    return f"lease of {renewal.node} released by {renewal.holder}"


def _drop_expired(book: GovernorBook, now: datetime) -> None:
    for node, lease in list(book.node_leases.items()):
        if lease.expires_at <= now:
            del book.node_leases[node]
            _journal(book, now, "governor", "node lease expired", f"{node}: {lease.holder} stopped renewing it")


def _journal(book: GovernorBook, now: datetime, by: str, what: str, detail: str) -> None:
    book.journal.append(JournalEntry(at=now, by=by, what=what, detail=detail))
    del book.journal[:-JOURNAL_SIZE]
