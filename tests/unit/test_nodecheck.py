from swarmops.domain.nodecheck import NodeFacts, judge_node

GOOD = NodeFacts("db", "198.18.0.6", docker_version="20.10.24", swarm_state="active", node_id="n5",
                 docker_root="/var/lib/docker", free_bytes=50 * 10**9, clock_skew=0.2, registry_status="200")


def judge(facts: NodeFacts, labels: dict[str, str] | None = None) -> list[str]:
    return judge_node(facts, "db", {"role": "db"} if labels is None else labels, "role", 2.0, 5.0).problems


def test_a_healthy_node_has_no_problems() -> None:
    assert judge(GOOD) == []


def test_each_fault_is_named_in_plain_words() -> None:
    assert "expected db" in judge(GOOD, {"role": "app"})[0]
    assert "registry not reachable" in judge(NodeFacts(**{**GOOD.__dict__, "registry_status": "000"}))[0]
    assert "free under /var/lib/docker" in judge(NodeFacts(**{**GOOD.__dict__, "free_bytes": 10**9}))[0]
    assert "clock off by +3.50s" in judge(NodeFacts(**{**GOOD.__dict__, "clock_skew": 3.5}))[0]
    assert "not an active member" in judge(NodeFacts(**{**GOOD.__dict__, "swarm_state": "inactive"}))[0]


def test_an_unreachable_node_reports_only_why() -> None:
    facts = NodeFacts("db", "198.18.0.6", error="no answer from 198.18.0.6 within 5s")
    row = judge_node(facts, "db", None, "role", 2, 5)
    assert not row.reachable and row.problems == ["no answer from 198.18.0.6 within 5s"]


def test_a_registry_that_asks_for_credentials_counts_as_reachable() -> None:
    assert judge(NodeFacts(**{**GOOD.__dict__, "registry_status": "401"})) == []
