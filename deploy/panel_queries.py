#!/usr/bin/env python3
"""List every PromQL expression of the dashboards and the Prometheus rules, one JSON object a line.

Run from the repository root:

    python3 deploy/panel_queries.py            # dashboards/*.json and deploy/prometheus rules
    python3 deploy/panel_queries.py FILE...    # only these dashboards (.json) or rule files

Each line is one JSON object with these keys, always in this order:

    kind   "panel" (a dashboard panel's query), "record" (a recording rule) or "alert"
    file   the file it comes from, as given or relative to the repository root
    name   the panel title, or the rule's record or alert name
    ref    the query's refId within its panel ("A", "B", ...); null for rules
    needs  list of conditions for the query to return data; empty when it needs nothing:
             "tail"  reads metrics that exist only in `containerkit-exporter tail`
             "run"   reads metrics that exist only in `containerkit-exporter run`
             "rules" reads a series recorded by deploy/prometheus/rules.yml or
                     stall-thresholds.yml: run it after Prometheus has loaded both files and
                     evaluated them once (it may return data sooner; it is a safe hint)
    expr   the expression, with Grafana's variables replaced so Prometheus accepts it:
             $__rate_interval -> 1m, $__interval -> 15s, $__range -> 1h, and every dashboard
             template variable ($source, $job, $instance, also written ${name}) -> .*

Panel and record expressions return data once the exporter has read a log with a completed, a
failed and an abandoned workflow and Prometheus has scraped it at least twice within a minute
(the 1m rate window), given their `needs`. Alert expressions return data only while the alert
condition holds; they are listed so that they can be parsed and evaluated too.

Exits 1 with a message on stderr when a file cannot be read, or when an expression still
contains a `$` after substitution (an unknown Grafana variable).
"""

import glob
import json
import os
import re
import sys

# Grafana's built-in interval variables, with values a test Prometheus scraping every few
# seconds can answer.
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

# Metrics that only one subcommand of the exporter produces (FORMAT.md section 3, issue 3 and 4).
MODE_METRICS = {
    "tail": (
        "containerkit_exporter_rotations_total",
        "containerkit_exporter_truncations_total",
        "containerkit_exporter_open_errors_total",
        "containerkit_exporter_files_open",
        "containerkit_exporter_file_offset_bytes",
        "containerkit_exporter_file_size_bytes",
    ),
    "run": (
        "containerkit_exporter_child_running",
        "containerkit_exporter_child_last_exit_code",
        "containerkit_exporter_child_start_time_seconds",
        "containerkit_exporter_passthrough_bytes_total",
    ),
}

# A series name recorded by our rules: `containerkit:` followed by the rest of the name.
RECORDED_SERIES = re.compile(r"\bcontainerkit:[a-zA-Z0-9_:]+")

DEFAULT_RULE_FILES = ("deploy/prometheus/rules.yml", "deploy/prometheus/stall-thresholds.yml")


class ExtractError(Exception):
    pass


def needs_of(expr):
    needs = []
    for mode, metrics in MODE_METRICS.items():
        if any(re.search(r"\b" + re.escape(m) + r"\b", expr) for m in metrics):
            needs.append(mode)
    if RECORDED_SERIES.search(expr):
        needs.append("rules")
    return needs


def substitute(expr, variables, where):
    """Replace Grafana variables ($name, ${name}, ${name:format}, [[name]]) in expr."""

    def value(name):
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name in variables:
            return ".*"
        raise ExtractError(f"{where}: unknown Grafana variable ${name}")

    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: value(m.group(1)), expr)
    expr = re.sub(r"\[\[(\w+)\]\]", lambda m: value(m.group(1)), expr)
    expr = re.sub(r"\$(\w+)", lambda m: value(m.group(1)), expr)
    if "$" in expr:
        raise ExtractError(f"{where}: a '$' is left after substitution: {expr}")
    return expr


def walk_panels(panels):
    """Yield every panel, descending into rows (collapsed rows keep theirs in `panels`)."""
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels") or [])


def dashboard_queries(path):
    with open(path, encoding="utf-8") as f:
        board = json.load(f)
    variables = {v["name"] for v in board.get("templating", {}).get("list", [])}
    for panel in walk_panels(board.get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr:
                continue
            where = f"{path}: panel {panel.get('title')!r} query {target.get('refId')}"
            expr = substitute(expr, variables, where)
            yield {
                "kind": "panel",
                "file": path,
                "name": panel.get("title"),
                "ref": target.get("refId"),
                "needs": needs_of(expr),
                "expr": expr,
            }


def rule_queries(path):
    try:
        import yaml
    except ImportError as err:
        raise ExtractError("reading rule files needs PyYAML (pip install pyyaml)") from err
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc.get("groups") or []:
        for rule in group.get("rules") or []:
            kind = "alert" if "alert" in rule else "record"
            expr = str(rule["expr"]).strip()
            yield {
                "kind": kind,
                "file": path,
                "name": rule[kind],
                "ref": None,
                "needs": needs_of(expr),
                "expr": expr,
            }


def main(argv):
    if argv:
        files = argv
    else:
        files = sorted(glob.glob("dashboards/*.json")) + list(DEFAULT_RULE_FILES)
        if not os.path.isdir("dashboards"):
            raise ExtractError("run from the repository root (no dashboards/ here)")
    for path in files:
        queries = dashboard_queries(path) if path.endswith(".json") else rule_queries(path)
        for query in queries:
            print(json.dumps(query))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ExtractError, OSError, ValueError, KeyError) as err:
        print(f"panel_queries: {err}", file=sys.stderr)
        sys.exit(1)
