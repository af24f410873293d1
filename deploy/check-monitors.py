#!/usr/bin/env python3
"""Structural check of PodMonitor and ServiceMonitor objects in rendered kustomize output.

kubernetes-validate has no schema for the Prometheus Operator's CRDs and only warns about
them, so deploy/check.sh checks them here instead:

    kubectl kustomize deploy/kubernetes/overlays/podmonitor | python3 deploy/check-monitors.py

For every PodMonitor and ServiceMonitor in the stream it checks that
- apiVersion is monitoring.coreos.com/v1 and metadata.name is set;
- spec and each endpoint use only fields this project relies on (a misspelt field would
  otherwise be dropped silently by the API server);
- the selector matches the pod template of a Deployment (PodMonitor) or a Service
  (ServiceMonitor) in the same output, and the endpoint's port name exists there: on a
  container or init container, or on the Service;
- interval and scrapeTimeout are Prometheus durations, and the timeout is not longer;
- the relabelings set job="containerkit-exporter", which rules.yml and the dashboards expect.
Any other object outside the core API groups fails the check, since nothing validates it.

Prints one line per problem and exits 1 if there is any; exits 0 silently otherwise.
"""

import re
import sys

import yaml

JOB = "containerkit-exporter"
MONITOR_API = "monitoring.coreos.com/v1"
CORE_KINDS = {("v1", "Service"), ("apps/v1", "Deployment")}

SPEC_FIELDS = {
    "PodMonitor": {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel",
                   "podTargetLabels", "sampleLimit"},
    "ServiceMonitor": {"selector", "endpoints", "namespaceSelector", "jobLabel",
                       "targetLabels", "podTargetLabels", "sampleLimit"},
}
ENDPOINT_FIELDS = {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                   "honorTimestamps", "relabelings", "metricRelabelings", "params"}
RELABEL_FIELDS = {"action", "sourceLabels", "separator", "targetLabel", "regex", "modulus",
                  "replacement"}
DURATION = re.compile(
    r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$"
)
UNIT_SECONDS = {"y": 31536000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


def seconds(duration):
    return sum(int(n) * UNIT_SECONDS[u] for n, u in re.findall(r"([0-9]+)(ms|[ywdhms])", duration))


def matches(selector, labels):
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def pod_ports(deployment):
    spec = deployment["spec"]["template"]["spec"]
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    return {p.get("name") for c in containers for p in c.get("ports") or []}


def check_endpoint(where, endpoint, ports, problems):
    for field in sorted(set(endpoint) - ENDPOINT_FIELDS):
        problems.append(f"{where}: unexpected field {field!r}")
    if endpoint.get("port") not in ports:
        problems.append(f"{where}: port {endpoint.get('port')!r} not found among {sorted(ports)}")
    for field in ("interval", "scrapeTimeout"):
        if field in endpoint and not DURATION.match(str(endpoint[field])):
            problems.append(f"{where}: {field} {endpoint[field]!r} is not a Prometheus duration")
    if ("interval" in endpoint and "scrapeTimeout" in endpoint
            and seconds(endpoint["scrapeTimeout"]) > seconds(endpoint["interval"])):
        problems.append(f"{where}: scrapeTimeout is longer than interval")
    sets_job = False
    for i, relabel in enumerate(endpoint.get("relabelings") or []):
        for field in sorted(set(relabel) - RELABEL_FIELDS):
            problems.append(f"{where}: relabelings[{i}]: unexpected field {field!r}")
        if (relabel.get("targetLabel") == "job" and relabel.get("replacement") == JOB
                and relabel.get("action", "replace") == "replace"
                and not relabel.get("sourceLabels")):
            sets_job = True
    if not sets_job:
        problems.append(f"{where}: no relabeling sets job={JOB!r}")


def check(objects):
    problems = []
    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    services = [o for o in objects if o.get("kind") == "Service"]
    for obj in objects:
        kind, api = obj.get("kind"), obj.get("apiVersion")
        name = (obj.get("metadata") or {}).get("name")
        where = f"{kind}/{name}"
        if (api, kind) in CORE_KINDS:
            continue
        if kind not in SPEC_FIELDS:
            problems.append(f"{where}: {api} {kind} is neither a core object nor a monitor; "
                            "nothing validates it")
            continue
        if api != MONITOR_API:
            problems.append(f"{where}: apiVersion {api!r}, expected {MONITOR_API!r}")
        if not name:
            problems.append(f"{where}: metadata.name is missing")
        spec = obj.get("spec") or {}
        for field in sorted(set(spec) - SPEC_FIELDS[kind]):
            problems.append(f"{where}: unexpected spec field {field!r}")
        selector = spec.get("selector") or {}
        if kind == "PodMonitor":
            targets = [d for d in deployments
                       if matches(selector, d["spec"]["template"]["metadata"].get("labels") or {})]
            ports = set().union(*(pod_ports(d) for d in targets)) if targets else set()
            endpoints = spec.get("podMetricsEndpoints")
        else:
            targets = [s for s in services
                       if matches(selector, s["metadata"].get("labels") or {})]
            ports = {p.get("name") for s in targets for p in s["spec"].get("ports") or []}
            endpoints = spec.get("endpoints")
        if not targets:
            problems.append(f"{where}: selector {selector} matches nothing in this output")
        if not endpoints:
            problems.append(f"{where}: no endpoints")
        for i, endpoint in enumerate(endpoints or []):
            check_endpoint(f"{where} endpoint {i}", endpoint, ports, problems)
    return problems


def main():
    objects = [o for o in yaml.safe_load_all(sys.stdin) if o]
    problems = check(objects)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
