"""The database agent's decisions (foobar-db-agent): observed state in, one action out.

Managed by cloud-init (foobar): edit the CDKTF stack, not this file. A pure function, no MySQL,
no DNS, no clock of its own: the agent observes, `decide` picks one action, the agent acts. The
project's tests drive it rule by rule.
"""

import dataclasses

# The operator's consent to replace a diverged server's data with a clone.
REBUILD_FLAG = "/etc/foobar/db-agent.rebuild"
# The operator's consent to promote a server that lacks transactions another has.
FORCE_PROMOTE_FLAG = "/etc/foobar/db-agent.force-promote"
# The "purged required binary logs" error, as 8.0 numbers it; 8.4+ wraps it in 13114.
PURGED = 1236


# --- What the agent sees ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Local:
    """This server's MySQL."""

    writable: bool
    scheduler_on: bool
    replication_configured: bool
    # performance_schema's SERVICE_STATE of the receiver: "ON", "OFF", "CONNECTING" or "".
    receiver: str
    # The receiver's last error, 1236 also when 8.4+ reports it inside another.
    receiver_error: int
    source_uuid: str
    server_uuid: str
    # The address its replication is configured with ("" when none).
    source_host: str = ""
    # As a writable primary: commits a replica acknowledged so far (Rpl_semi_sync_source_yes_tx), and
    # whether commits wait for an acknowledgement now (Rpl_semi_sync_source_status).
    acknowledged_commits: int = 0
    semi_sync_on: bool = False


@dataclasses.dataclass(frozen=True)
class Peer:
    """Another web server slot, as seen from here."""

    name: str
    # "address": it resolved; "absent": the resolver said the name does not exist; "failed": no answer.
    resolution: str
    address: str = ""
    answered: bool = False
    writable: bool = False
    server_uuid: str = ""
    # Whether it replicates and its receiver runs (a donor for a clone).
    replicating: bool = False
    # Its transactions this server lacks (a GTID set; "" when none), computed by this MySQL.
    ahead_of_us: str = ""
    # Of those, the ones no longer in its binary logs: replication cannot fetch them.
    unfetchable: str = ""


@dataclasses.dataclass(frozen=True)
class Observation:
    """Everything one decision needs."""

    now: float
    # "address", "absent" or "failed", as for a peer, and the address it resolved to.
    primary_resolution: str
    primary_address: str
    my_address: str
    local: Local
    peers: tuple
    # Following (not named): transactions only this server has, apart from its own heartbeats.
    errant: str = ""
    # Following: whether the errant transactions, if any, are all this server's own heartbeats.
    errant_only_heartbeats: bool = False
    # Following: what the primary purged that this server lacks (it could never fetch it).
    missing_purged: str = ""
    # Following: the primary's server_uuid, "" when it does not answer.
    primary_uuid: str = ""
    force_promote: bool = False
    rebuild_allowed: bool = False


@dataclasses.dataclass(frozen=True)
class Memory:
    """What the agent keeps between decisions: since when each thing has been so (monotonic seconds)."""

    primary_lost_since: float = None
    silent_since: tuple = ()  # ((peer name, since), ...)
    # The last address each peer's name resolved to ((name, address), ...): a peer whose name then
    # fails is still known as the server this one replicated from.
    addresses: tuple = ()
    # As the writable primary: the acknowledged-commit count last seen, and when it last grew.
    acknowledged_commits: int = None
    acknowledged_at: float = None
    # As the named primary: since when another server answers as writable.
    blocked_since: float = None


@dataclasses.dataclass(frozen=True)
class Settings:
    fence_after: float
    promote_after: float


@dataclasses.dataclass(frozen=True)
class Decision:
    """One action and why. `target`: the address it acts on (a source, a donor)."""

    action: str
    reason: str
    target: str = ""


NOTHING = "nothing"
WAIT = "wait"
REFUSE = "refuse"
FENCE = "fence"
PROMOTE = "promote"
CATCH_UP = "catch-up"
JOIN = "join"
RECONNECT = "reconnect"
STOP_SCHEDULER = "stop-scheduler"
STOP_RECEIVING = "stop-receiving"
FORGET_HEARTBEATS = "forget-heartbeats"
REBUILD = "rebuild"


# --- Deciding -------------------------------------------------------------------


def decide(observation, memory, settings):
    """The one action this server takes now, and the memory for the next decision."""
    o = observation
    local = o.local
    memory = _remember_acknowledgements(o, memory)
    known = dict(memory.addresses)
    known.update((peer.name, peer.address) for peer in o.peers if peer.resolution == "address")
    memory = dataclasses.replace(memory, addresses=tuple(sorted(known.items())))
    if o.primary_resolution != "address":
        lost_since = memory.primary_lost_since if memory.primary_lost_since is not None else o.now
        memory = dataclasses.replace(memory, primary_lost_since=lost_since)
        if local.writable and o.now - lost_since >= settings.fence_after:
            acknowledged = memory.acknowledged_at
            if acknowledged is not None and o.now - acknowledged < settings.fence_after:
                # Not on a DNS failure alone: a replica that acknowledges follows this server, so no other is promoted.
                return Decision(NOTHING, "the primary's record does not resolve, but replicas acknowledge this server's commits: still the primary"), memory
            return Decision(FENCE, f"the primary's record has not resolved for {settings.fence_after:g} s and no replica has acknowledged a commit for as long: this server cannot know it is still the primary"), memory
        return Decision(NOTHING, "the primary's record does not resolve"), memory
    memory = dataclasses.replace(memory, primary_lost_since=None)
    if o.primary_address == o.my_address:
        return _as_named_primary(o, memory, settings)
    memory = dataclasses.replace(memory, blocked_since=None)
    if local.writable:
        return Decision(FENCE, f"the primary's record names {o.primary_address} now, not this server"), memory
    if local.scheduler_on:
        return Decision(STOP_SCHEDULER, "only the primary writes heartbeats"), memory
    return _as_replica(o), memory


def _remember_acknowledgements(o, memory):
    """Since when a replica last acknowledged one of this writable server's commits."""
    if not o.local.writable:
        return dataclasses.replace(memory, acknowledged_commits=None, acknowledged_at=None)
    count = o.local.acknowledged_commits
    grew = memory.acknowledged_commits is not None and count > memory.acknowledged_commits
    return dataclasses.replace(memory, acknowledged_commits=count, acknowledged_at=o.now if grew else memory.acknowledged_at)


def _as_named_primary(o, memory, settings):
    local = o.local
    if local.writable:
        return Decision(NOTHING, "the writable primary"), dataclasses.replace(memory, blocked_since=None)
    silent = dict(memory.silent_since)
    addresses = dict(memory.addresses)
    blocked, waiting, ahead, unknown = [], [], [], []
    for peer in o.peers:
        if peer.address == o.my_address or peer.resolution == "absent":
            silent.pop(peer.name, None)
            continue
        if peer.resolution == "address" and peer.answered:
            silent.pop(peer.name, None)
            if peer.writable:
                blocked.append(peer)
            elif peer.ahead_of_us:
                ahead.append(peer)
            continue
        # No answer, or no address: it may still be writable until it has fenced itself.
        since = silent.setdefault(peer.name, o.now)
        if o.now - since < settings.promote_after:
            waiting.append(peer.name)
        elif addresses.get(peer.name) != local.source_host:
            # Fenced by now, but it may hold acknowledged writes: only the server this one replicated
            # from (the old primary, whose unacknowledged tail is all it can hold alone) may be missing.
            unknown.append(peer.name)
    blocked_since = (memory.blocked_since if memory.blocked_since is not None else o.now) if blocked else None
    memory = dataclasses.replace(memory, silent_since=tuple(sorted(silent.items())), blocked_since=blocked_since)
    if blocked:
        names = ", ".join(peer.name for peer in blocked)
        source = next((peer for peer in blocked if peer.address == local.source_host), None)
        if source and local.receiver in ("ON", "CONNECTING") and o.now - blocked_since >= settings.fence_after:
            # It stays writable while replicas acknowledge (a DNS failure alone): this one stops, so it fences.
            return Decision(STOP_RECEIVING, f"named primary; {source.name} is still writable after {settings.fence_after:g} s: no longer acknowledging its commits, so that it fences itself"), memory
        return Decision(WAIT, f"named primary, but still writable: {names}; waiting for it to fence itself"), memory
    if waiting:
        return Decision(WAIT, f"named primary; not answering: {', '.join(waiting)}; waiting {settings.promote_after:g} s in all for it to have fenced itself"), memory
    if local.receiver_error == PURGED:
        return Decision(REFUSE, "named primary, but its replication stopped on transactions it could not fetch (1236): not promoting a server that may lack writes"), memory
    if o.force_promote:
        return Decision(PROMOTE, f"named primary, promoted by force ({FORCE_PROMOTE_FLAG}): what another server holds and this one lacks is left out"), memory
    if unknown:
        return Decision(REFUSE, f"named primary; {', '.join(unknown)} has not answered for {settings.promote_after:g} s and may hold acknowledged writes this server lacks: start it, or to promote without it: touch {FORCE_PROMOTE_FLAG}"), memory
    fetchable = [peer for peer in ahead if not peer.unfetchable]
    if ahead and not fetchable:
        held = ", ".join(f"{peer.name} ({peer.unfetchable})" for peer in ahead)
        return Decision(REFUSE, f"named primary, but lacks transactions that no server still has in its binary logs: {held}; name {ahead[0].name} again, or to promote this server without them: touch {FORCE_PROMOTE_FLAG}"), memory
    if fetchable:
        # Whichever answering server can give what this one lacks comes first; the next round sees whether another still has more.
        source = fetchable[0]
        if local.replication_configured and local.receiver in ("ON", "CONNECTING") and local.source_uuid == source.server_uuid:
            return Decision(WAIT, f"named primary; receiving {source.name}'s transactions {source.ahead_of_us} through replication first"), memory
        return Decision(CATCH_UP, f"named primary; {source.name} holds transactions this server lacks ({source.ahead_of_us}): catching up from it first", source.address), memory
    return Decision(PROMOTE, "named primary; no other server is writable or may be, and none holds a transaction this server lacks"), memory


def _as_replica(o):
    local = o.local
    primary = o.primary_address
    if local.replication_configured and local.receiver_error == PURGED and local.receiver == "OFF":
        donor = _donor(o)
        return Decision(REBUILD, f"the primary no longer has transactions this server lacks (1236): rebuilding from {donor} with CLONE", donor)
    if not local.replication_configured:
        if not o.primary_uuid:
            return Decision(WAIT, f"the primary at {primary} does not answer yet")
        if o.errant and o.errant_only_heartbeats:
            return Decision(FORGET_HEARTBEATS, f"forgetting transactions {o.errant}: only this server's own heartbeats, from before it fenced itself")
        if o.errant:
            if o.rebuild_allowed:
                donor = _donor(o)
                return Decision(REBUILD, f"diverged (transactions {o.errant} exist only here) and a rebuild is allowed: archiving them, then rebuilding from {donor} with CLONE", donor)
            return Decision(REFUSE, f"diverged from the primary: transactions {o.errant} exist only here; to rebuild this server from the others: touch {REBUILD_FLAG} (they are archived first)")
        if o.missing_purged:
            donor = _donor(o)
            return Decision(REBUILD, f"the primary purged transactions this server lacks ({o.missing_purged}): rebuilding from {donor} with CLONE", donor)
        return Decision(JOIN, f"joining the primary at {primary} as a replica (no errant transactions)", primary)
    # By address, the one this agent resolved past every cache: MySQL's own lookup of the name may be
    # up to a TTL old, and would reconnect to the old primary.
    if local.source_host != primary:
        return Decision(RECONNECT, f"replicating from {local.source_host or 'nowhere'}, not the primary at {primary}: reconnecting", primary)
    if local.receiver != "ON":
        return Decision(NOTHING, "replication is not connected")
    if o.primary_uuid and local.source_uuid != o.primary_uuid:
        return Decision(RECONNECT, f"replication source is not the primary at {primary}: reconnecting", primary)
    return Decision(NOTHING, "replicating from the primary")


def _donor(o):
    """A healthy replica that answers, else the primary: a clone reads the donor's whole data set."""
    for peer in o.peers:
        if peer.answered and peer.replicating and not peer.writable and peer.address not in (o.my_address, o.primary_address):
            return peer.address
    return o.primary_address
