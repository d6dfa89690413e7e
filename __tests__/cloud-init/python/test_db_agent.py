"""The database agent's decisions, rule by rule: observed state in, one action out (no MySQL, no DNS)."""

import dataclasses
import importlib.machinery
import importlib.util
import pathlib
import unittest

import sys

FILES = pathlib.Path(__file__).resolve().parents[3] / "cloud-init/files"
AGENT = FILES / "usr/local/sbin/foobar-db-agent"
# The agent imports its decisions from beside it on the droplet; here, from the tree.
sys.path.insert(0, str(FILES / "usr/local/lib/foobar"))
loader = importlib.machinery.SourceFileLoader("db_agent", str(AGENT))
spec = importlib.util.spec_from_loader("db_agent", loader)
agent = importlib.util.module_from_spec(spec)
loader.exec_module(agent)

SETTINGS = agent.Settings(fence_after=5, promote_after=40)
ME, WEB02, WEB03 = "10.0.0.3", "10.0.0.4", "10.0.0.5"
# A replica of web-02, as every fixture below starts.
READ_ONLY_REPLICA = agent.Local(writable=False, scheduler_on=False, replication_configured=True, receiver="ON",
                                receiver_error=0, source_uuid="uuid-primary", server_uuid="uuid-me", source_host=WEB02)
WRITABLE = dataclasses.replace(READ_ONLY_REPLICA, writable=True, scheduler_on=True, replication_configured=False, receiver="",
                               source_uuid="", source_host="", semi_sync_on=True)


def peer(name, address="", resolution="address", **kwargs):
    return agent.Peer(name=name, resolution=resolution, address=address, **kwargs)


def seen(now=100.0, primary=ME, resolution="address", local=READ_ONLY_REPLICA, peers=(), **kwargs):
    return agent.Observation(now=now, primary_resolution=resolution, primary_address=primary if resolution == "address" else "",
                             my_address=ME, local=local, peers=tuple(peers), **kwargs)


def decide(observation, memory=agent.Memory()):
    return agent.decide(observation, memory, SETTINGS)


class Fencing(unittest.TestCase):
    def test_a_writable_server_the_record_does_not_name_fences_at_once(self):
        decision, _ = decide(seen(primary=WEB02, local=WRITABLE))
        self.assertEqual(decision.action, agent.FENCE)
        self.assertIn(WEB02, decision.reason)

    def test_a_primary_whose_record_does_not_resolve_fences_after_fence_after_seconds_on_the_monotonic_clock(self):
        decision, memory = decide(seen(now=100.0, resolution="failed", local=WRITABLE))
        self.assertEqual(decision.action, agent.NOTHING)
        decision, memory = decide(seen(now=104.9, resolution="failed", local=WRITABLE), memory)
        self.assertEqual(decision.action, agent.NOTHING)
        decision, _ = decide(seen(now=105.0, resolution="failed", local=WRITABLE), memory)
        self.assertEqual(decision.action, agent.FENCE)

    def test_a_primary_whose_replicas_still_acknowledge_is_not_fenced_by_a_dns_failure_alone(self):
        _, memory = decide(seen(now=100.0, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=10)))
        for now, count in ((103.0, 13), (106.0, 16)):
            decision, memory = decide(seen(now=now, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=count)), memory)
        self.assertEqual(decision.action, agent.NOTHING)
        self.assertIn("acknowledge", decision.reason)

    def test_once_no_replica_has_acknowledged_for_fence_after_seconds_the_dns_failure_fences(self):
        _, memory = decide(seen(now=100.0, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=10)))
        _, memory = decide(seen(now=101.0, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=11)), memory)
        # The last acknowledgement at 101: cut off from everything, it fences 5 s later.
        decision, memory = decide(seen(now=105.9, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=11)), memory)
        self.assertEqual(decision.action, agent.NOTHING)
        decision, _ = decide(seen(now=106.0, resolution="failed", local=dataclasses.replace(WRITABLE, acknowledged_commits=11)), memory)
        self.assertEqual(decision.action, agent.FENCE)

    def test_the_record_resolving_again_resets_the_fence_timer(self):
        _, memory = decide(seen(now=100.0, resolution="failed", local=WRITABLE))
        _, memory = decide(seen(now=103.0, local=WRITABLE), memory)
        decision, _ = decide(seen(now=106.0, resolution="failed", local=WRITABLE), memory)
        self.assertEqual(decision.action, agent.NOTHING)


class Promotion(unittest.TestCase):
    def test_the_named_primary_waits_while_another_server_answers_as_writable(self):
        decision, _ = decide(seen(peers=[peer("web-02", WEB02, answered=True, writable=True)]))
        self.assertEqual((decision.action, "web-02" in decision.reason), (agent.WAIT, True))

    def test_a_silent_peer_blocks_promotion_for_promote_after_seconds_then_counts_as_fenced(self):
        silent = [peer("web-02", WEB02)]
        decision, memory = decide(seen(now=100.0, peers=silent))
        self.assertEqual(decision.action, agent.WAIT)
        decision, memory = decide(seen(now=139.0, peers=silent), memory)
        self.assertEqual(decision.action, agent.WAIT)
        decision, _ = decide(seen(now=140.0, peers=silent), memory)
        self.assertEqual(decision.action, agent.PROMOTE)

    def test_a_peer_whose_name_fails_to_resolve_is_silent_not_absent(self):
        decision, _ = decide(seen(peers=[peer("web-02", resolution="failed")]))
        self.assertEqual(decision.action, agent.WAIT)

    def test_the_old_primary_whose_name_then_fails_is_still_known_by_its_last_address(self):
        _, memory = decide(seen(now=100.0, peers=[peer("web-02", WEB02)]))
        decision, memory = decide(seen(now=101.0, peers=[peer("web-02", resolution="failed")]), memory)
        self.assertEqual(decision.action, agent.WAIT)
        decision, _ = decide(seen(now=140.0, peers=[peer("web-02", resolution="failed")]), memory)
        self.assertEqual(decision.action, agent.PROMOTE)

    def test_a_silent_server_that_was_not_the_source_may_hold_acknowledged_writes_so_the_candidate_refuses(self):
        peers = [peer("web-02", WEB02), peer("web-03", WEB03)]
        _, memory = decide(seen(now=100.0, peers=peers))
        decision, _ = decide(seen(now=140.0, peers=peers), memory)
        self.assertEqual(decision.action, agent.REFUSE)
        self.assertIn("web-03", decision.reason)
        self.assertNotIn("web-02", decision.reason)
        self.assertIn(agent.FORCE_PROMOTE_FLAG, decision.reason)
        decision, _ = decide(seen(now=140.0, peers=peers, force_promote=True), memory)
        self.assertEqual(decision.action, agent.PROMOTE)

    def test_a_peer_that_no_longer_has_what_the_candidate_lacks_in_its_logs_makes_it_refuse_naming_both(self):
        ahead = peer("web-03", WEB03, answered=True, server_uuid="uuid-3", ahead_of_us="uuid-primary:21-40", unfetchable="uuid-primary:21-40")
        decision, _ = decide(seen(peers=[ahead]))
        self.assertEqual(decision.action, agent.REFUSE)
        self.assertIn("web-03", decision.reason)
        self.assertIn("uuid-primary:21-40", decision.reason)
        self.assertIn(agent.FORCE_PROMOTE_FLAG, decision.reason)

    def test_a_candidate_catches_up_from_a_peer_that_still_has_what_it_lacks_before_refusing(self):
        purged = peer("web-02", WEB02, answered=True, server_uuid="uuid-2", ahead_of_us="uuid-primary:21-40", unfetchable="uuid-primary:21-40")
        logged = peer("web-03", WEB03, answered=True, server_uuid="uuid-3", ahead_of_us="uuid-primary:21-40")
        decision, _ = decide(seen(peers=[purged, logged]))
        self.assertEqual((decision.action, decision.target), (agent.CATCH_UP, WEB03))

    def test_the_candidate_stops_acknowledging_an_old_primary_that_stays_writable(self):
        old = peer("web-02", WEB02, answered=True, writable=True)
        decision, memory = decide(seen(now=100.0, peers=[old]))
        self.assertEqual(decision.action, agent.WAIT)
        decision, _ = decide(seen(now=105.0, peers=[old]), memory)
        self.assertEqual(decision.action, agent.STOP_RECEIVING)
        decision, _ = decide(seen(now=105.0, peers=[old], local=dataclasses.replace(READ_ONLY_REPLICA, receiver="OFF")), memory)
        self.assertEqual(decision.action, agent.WAIT)

    def test_a_slot_the_resolver_says_does_not_exist_is_empty(self):
        decision, _ = decide(seen(peers=[peer("web-04", resolution="absent")]))
        self.assertEqual(decision.action, agent.PROMOTE)

    def test_a_candidate_whose_replication_could_not_fetch_transactions_refuses(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, receiver="OFF", receiver_error=1236)
        decision, _ = decide(seen(local=local))
        self.assertEqual(decision.action, agent.REFUSE)
        self.assertIn("1236", decision.reason)

    def test_the_old_primary_answering_with_more_transactions_is_waited_for_through_replication(self):
        old = peer("web-02", WEB02, answered=True, server_uuid="uuid-primary", ahead_of_us="uuid-primary:41-42")
        decision, _ = decide(seen(peers=[old]))
        self.assertEqual(decision.action, agent.WAIT)
        self.assertIn("uuid-primary:41-42", decision.reason)

    def test_a_replica_with_transactions_the_candidate_lacks_is_caught_up_from_first(self):
        ahead = peer("web-03", WEB03, answered=True, replicating=True, server_uuid="uuid-3", ahead_of_us="uuid-primary:42")
        decision, _ = decide(seen(peers=[ahead]))
        self.assertEqual((decision.action, decision.target), (agent.CATCH_UP, WEB03))

    def test_force_promote_skips_the_freshness_rule(self):
        ahead = peer("web-03", WEB03, answered=True, server_uuid="uuid-3", ahead_of_us="uuid-primary:42")
        decision, _ = decide(seen(peers=[ahead], force_promote=True))
        self.assertEqual(decision.action, agent.PROMOTE)

    def test_a_writable_named_primary_does_nothing(self):
        decision, _ = decide(seen(local=WRITABLE))
        self.assertEqual(decision.action, agent.NOTHING)


class Following(unittest.TestCase):
    REPLICA_OF_WEB02 = dict(primary=WEB02, primary_uuid="uuid-primary")

    def test_a_replica_on_1236_rebuilds_with_clone_never_skips(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, receiver="OFF", receiver_error=1236)
        decision, _ = decide(seen(local=local, **self.REPLICA_OF_WEB02))
        self.assertEqual((decision.action, decision.target), (agent.REBUILD, WEB02))

    def test_the_donor_is_a_healthy_replica_when_one_answers(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, receiver="OFF", receiver_error=1236)
        donor = peer("web-03", WEB03, answered=True, replicating=True)
        decision, _ = decide(seen(local=local, peers=[donor], **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.target, WEB03)

    def test_a_server_without_replication_and_no_errant_transaction_joins(self):
        decision, _ = decide(seen(local=dataclasses.replace(READ_ONLY_REPLICA, replication_configured=False, receiver=""), **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.JOIN)

    def test_a_former_primary_with_only_its_own_heartbeats_forgets_them(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, replication_configured=False, receiver="")
        decision, _ = decide(seen(local=local, errant="uuid-me:7-9", errant_only_heartbeats=True, **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.FORGET_HEARTBEATS)

    def test_a_diverged_former_primary_stays_read_only_and_says_how_to_rebuild(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, replication_configured=False, receiver="")
        decision, _ = decide(seen(local=local, errant="uuid-me:7", **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.REFUSE)
        self.assertIn(agent.REBUILD_FLAG, decision.reason)
        decision, _ = decide(seen(local=local, errant="uuid-me:7", rebuild_allowed=True, **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.REBUILD)

    def test_a_server_lacking_what_the_primary_purged_rebuilds_instead_of_joining(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, replication_configured=False, receiver="")
        decision, _ = decide(seen(local=local, missing_purged="uuid-primary:1-20", **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.REBUILD)

    def test_a_replica_connected_to_another_source_reconnects(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, source_uuid="uuid-old")
        decision, _ = decide(seen(local=local, **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.RECONNECT)

    def test_a_replica_follows_the_address_the_agent_resolved_not_mysqls_cached_name(self):
        local = dataclasses.replace(READ_ONLY_REPLICA, source_host="mysql-primary.internal.example.com")
        decision, _ = decide(seen(local=local, **self.REPLICA_OF_WEB02))
        self.assertEqual((decision.action, decision.target), (agent.RECONNECT, WEB02))

    def test_only_the_primary_runs_the_heartbeat(self):
        decision, _ = decide(seen(local=dataclasses.replace(READ_ONLY_REPLICA, scheduler_on=True), **self.REPLICA_OF_WEB02))
        self.assertEqual(decision.action, agent.STOP_SCHEDULER)


class ErrantEvents(unittest.TestCase):
    """`only_heartbeats` reads every event of mysqlbinlog's output, not only table maps."""

    HEARTBEAT_ROWS = "\n".join([
        "# at 157", "#241202 10:00:00 server id 1  end_log_pos 234 CRC32 0x0 	GTID	last_committed=0",
        "SET @@SESSION.GTID_NEXT= 'uuid-me:7'/*!*/;", "BEGIN", "/*!*/;",
        "#241202 10:00:00 server id 1  end_log_pos 300 CRC32 0x0 	Table_map: `foobar`.`heartbeat` mapped to number 90",
        "### UPDATE `foobar`.`heartbeat`", "### WHERE", "###   @1=1", "COMMIT/*!*/;",
    ])

    def check(self, text):
        agent.binlog_events = lambda _set: text
        return agent.only_heartbeats("uuid-me:7", "foobar")

    def test_row_changes_of_the_heartbeat_only(self):
        self.assertTrue(self.check(self.HEARTBEAT_ROWS))

    def test_ddl_among_heartbeats_is_errant(self):
        self.assertFalse(self.check(self.HEARTBEAT_ROWS + "\nuse `foobar`/*!*/;\nTRUNCATE TABLE messages\n/*!*/;"))

    def test_another_table_is_errant(self):
        self.assertFalse(self.check(self.HEARTBEAT_ROWS.replace("`heartbeat` mapped", "`messages` mapped")))


if __name__ == "__main__":
    unittest.main()
