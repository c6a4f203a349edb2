"""load_policy: request path, then $ZEROTOUCH_POLICY, then the worker's default."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.policy import PolicyActivities
from zerotouch.models import PolicyRequest

from .conftest import Env

GOOD = """
mode: approve-all
runbooks:
  - name: restart-crashloop
    match: {alertname: KubePodCrashLooping}
    steps: [{action: restart_deployment}]
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in {"good": GOOD, "observe": "mode: observe\n", "bad": "mode: yolo\n", "broken": "a: [\n"}.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        paths[name] = str(path)
    return paths


def test_path_precedence(files: dict[str, str], activity_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    activities = PolicyActivities(default_path=files["observe"])
    monkeypatch.delenv("ZEROTOUCH_POLICY", raising=False)
    assert activity_env.env.run(activities.load_policy, PolicyRequest()).mode == "observe"
    monkeypatch.setenv("ZEROTOUCH_POLICY", files["good"])
    policy = activity_env.env.run(activities.load_policy, PolicyRequest())
    assert policy.mode == "approve-all" and policy.runbooks[0].name == "restart-crashloop"
    assert activity_env.env.run(activities.load_policy, PolicyRequest(path=files["observe"])).mode == "observe"


@pytest.mark.parametrize(("name", "message"), [("bad", "mode"), ("broken", "not valid YAML"),
                                               ("missing", "cannot read policy")])
def test_invalid_policy_is_not_retried(files: dict[str, str], activity_env: Env, tmp_path: Path, name: str,
                                       message: str) -> None:
    path = files.get(name, str(tmp_path / "missing.yaml"))
    with pytest.raises(ApplicationError) as caught:
        activity_env.env.run(PolicyActivities(default_path=None).load_policy, PolicyRequest(path=path))
    assert caught.value.type == "InvalidPolicy" and caught.value.non_retryable
    assert message in caught.value.message and path in caught.value.message


def test_no_policy_configured(activity_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEROTOUCH_POLICY", raising=False)
    with pytest.raises(ApplicationError) as caught:
        activity_env.env.run(PolicyActivities(default_path=None).load_policy, PolicyRequest())
    assert caught.value.type == "InvalidPolicy" and "ZEROTOUCH_POLICY" in caught.value.message


def test_the_parsed_policy_is_reused_until_the_file_changes(
    files: dict[str, str], activity_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZEROTOUCH_POLICY", raising=False)
    activities = PolicyActivities(default_path=files["good"])
    first = activity_env.env.run(activities.load_policy, PolicyRequest())
    assert activity_env.env.run(activities.load_policy, PolicyRequest()) is first, "unchanged file: not parsed again"
    Path(files["good"]).write_text(GOOD.replace("approve-all", "observe"))
    assert activity_env.env.run(activities.load_policy, PolicyRequest()).mode == "observe"
    Path(files["good"]).write_text("mode: yolo\n")
    with pytest.raises(ApplicationError, match="mode"):
        activity_env.env.run(activities.load_policy, PolicyRequest())
