"""The Grafana dashboard: valid JSON, valid PromQL, built only on metrics zerotouch exports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from embedded.monitoring import binary
from tests.support.dashboard import dashboard, expressions, family_of, series_names
from zerotouch import metric_names


def _zerotouch_instruments() -> set[str]:
    return {value for name, value in vars(metric_names).items() if name.isupper() and isinstance(value, str)
            and value.startswith("zerotouch_")}


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        columns, rows = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        mine = {(x, y) for x in columns for y in rows}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_every_zerotouch_series_is_one_zerotouch_exports() -> None:
    queried = {family_of(s) for s in series_names() if s.startswith("zerotouch_")}
    unknown = queried - _zerotouch_instruments()
    assert not unknown, f"the dashboard queries metrics nothing exports: {unknown}"
    # The seed's zero-ops dashboard: automation and human rates, MTTD, MTTR, suppressed and
    # remediated alerts, Governor refusals.
    for needed in ("zerotouch_incidents_closed", "zerotouch_mttd_seconds", "zerotouch_mttr_seconds",
                   "zerotouch_alerts_suppressed", "zerotouch_actions", "zerotouch_governor_refusals"):
        assert needed in queried, needed


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses rule expressions; Grafana's range variables become fixed windows first.
    rules = [
        {"record": f"zerotouch:dashboard_panel_{i}",
         "expr": expr.replace("$__rate_interval", "1m").replace("$__range", "7d")}
        for i, expr in enumerate(expressions())
    ]
    rule_file = tmp_path / "dashboard.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([binary("promtool"), "check", "rules", str(rule_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
