from typing import Any

from swarmops.domain.plan import BuildStep, make_plan
from swarmops.domain.render import Rendered, RenderedService
from tests.unit.fakes import service, stack


def rendered(**hashes: str) -> Rendered:
    return Rendered(text="", services={n: RenderedService(n, f"reg/app/{n}:c1", h, {}) for n, h in hashes.items()})


def actions(plan: Any) -> dict[str, str]:
    return {c.service: c.action for c in plan.changes}


def test_nothing_to_do_when_specs_and_commit_match() -> None:
    plan = make_plan("app", "c1", rendered(web="h1"), stack([service("web")]), ())
    assert actions(plan) == {"web": "unchanged"}
    assert not plan.deploy and plan.restarts == ()


def test_new_commit_with_same_spec_only_relabels() -> None:
    plan = make_plan("app", "c2", rendered(web="h1"), stack([service("web")]), ())
    assert actions(plan) == {"web": "relabel"}
    assert plan.deploy and plan.restarts == ()


def test_changed_spec_updates_only_that_service() -> None:
    live = stack([service("web"), service("db", spec_hash="d1")])
    plan = make_plan("app", "c2", rendered(web="h2", db="d1"), live, ())
    assert actions(plan) == {"web": "update", "db": "relabel"}
    assert plan.restarts == ("web",)


def test_new_and_removed_services() -> None:
    plan = make_plan("app", "c1", rendered(api="a1"), stack([service("web")]), ())
    assert actions(plan) == {"api": "create", "web": "remove"}


def test_plan_serialises_builds_and_changes() -> None:
    build = BuildStep("web", "reg/app/web:c2", "f" * 64, "no image")
    plan = make_plan("app", "c2", rendered(web="h2"), stack([]), (build,))
    data = plan.to_dict()
    assert data["builds"][0]["service"] == "web" and data["changes"][0]["action"] == "create"
    assert "1 build(s)" in plan.summary()
