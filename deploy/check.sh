#!/usr/bin/env bash
# Static checks of the dashboards and deployment files. Run from the repository root:
#
#   bash deploy/check.sh
#
# Checks: Prometheus rules (promtool check rules, promtool test rules), the scrape example
# (promtool check config), the PromQL of every dashboard panel (promtool check rules on the
# output of deploy/panel_queries.py), the kustomize base and every overlay (kubectl
# kustomize, kubernetes-validate --strict on the core objects, deploy/check-monitors.py on
# the PodMonitor and ServiceMonitor), yamllint, hadolint, the structure of every dashboard
# (jq), and the systemd unit (systemd-analyze verify and security).
#
# It installs nothing. Tools it uses: promtool, kubectl, kubernetes-validate, yamllint,
# hadolint, jq, python3 with PyYAML, systemd-analyze. A missing tool skips the checks that
# need it, with a message; with CI=true a missing tool fails them instead.
#
# Exits 0 when every check that ran passed, 1 otherwise.
set -euo pipefail

if [[ ! -f deploy/check.sh || ! -d dashboards ]]; then
    echo "deploy/check.sh: run from the repository root" >&2
    exit 2
fi

PROM=deploy/prometheus
KUBE=deploy/kubernetes
UNIT=deploy/systemd/containerkit-exporter.service
# Native sidecars (init containers with restartPolicy Always) need Kubernetes 1.29 or later;
# the manifests are validated against that version and against the newest schema the
# installed kubernetes-validate knows.
KUBE_MIN_VERSION=1.29.0
# systemd-analyze security exposure, times ten, above which the unit fails (it scores 1.5).
UNIT_EXPOSURE_MAX=20

passed=0
failed=0
skipped=0
last_status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have() {
    case "$1" in
        python3-yaml) command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# require NAME TOOL...: true when every tool is there; otherwise records a skip (or, with
# CI=true, a failure) for check NAME and returns false.
require() {
    local name=$1 tool missing=()
    shift
    for tool in "$@"; do
        have "$tool" || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ ${CI:-} == true ]]; then
        failed=$((failed + 1))
        printf 'FAIL  %s: %s not installed (CI=true: a missing tool fails)\n' \
            "$name" "${missing[*]}"
    else
        skipped=$((skipped + 1))
        printf 'skip  %s: %s not installed\n' "$name" "${missing[*]}"
    fi
    return 1
}

# check NAME COMMAND...: runs the command, prints ok or FAIL with its output indented.
# The command runs in a subshell with errexit on (outside any `if`, where bash would ignore
# it), so a failing step inside a check function fails the check.
check() {
    local name=$1 out status
    shift
    set +e
    out=$(
        set -e
        "$@" 2>&1
    )
    status=$?
    set -e
    last_status=$status
    if ((status == 0)); then
        passed=$((passed + 1))
        printf 'ok    %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAIL  %s (exit status %d)\n' "$name" "$status"
        [[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/      /'
    fi
}

version_of() {
    local tool=$1
    shift
    if have "$tool"; then
        printf '  %-20s %s\n' "$tool" "$("$@" 2>&1 | head -n 1)"
    else
        printf '  %-20s %s\n' "$tool" "not installed"
    fi
}

echo "Tools:"
version_of promtool promtool --version
version_of kubectl kubectl version --client
version_of kubernetes-validate kubernetes-validate --version
version_of yamllint yamllint --version
version_of hadolint hadolint --version
version_of jq jq --version
version_of python3 python3 --version
version_of python3-yaml python3 -c 'import yaml; print("PyYAML", yaml.__version__)'
version_of systemd-analyze systemd-analyze --version
echo

# --- Prometheus ---------------------------------------------------------------------------

check_config() {
    # Prometheus 2.42 has no scrape_config_files, so the example is appended to a minimal
    # configuration that loads the rules.
    {
        printf 'global:\n  evaluation_interval: 1m\nrule_files:\n'
        printf '  - %s\n' "$PWD/$PROM/rules.yml" "$PWD/$PROM/stall-thresholds.yml"
        cat "$PROM/scrape-config.yml"
    } >"$tmp/prometheus.yml"
    promtool check config "$tmp/prometheus.yml"
}

if require "promtool check rules" promtool; then
    check "promtool check rules" promtool check rules "$PROM/rules.yml" "$PROM/stall-thresholds.yml"
fi
if require "promtool test rules" promtool; then
    check "promtool test rules" promtool test rules "$PROM"/*_test.yml
fi
if require "promtool check config" promtool; then
    check "promtool check config (scrape-config.yml with the rules)" check_config
fi

# --- Dashboard queries --------------------------------------------------------------------

check_query_list() {
    python3 deploy/panel_queries.py >"$tmp/queries.jsonl"
    # Every line has the documented keys in order, a known kind and needs, and no variable.
    jq -e -s '
        length > 0 and all(.[];
            (keys_unsorted == ["kind", "file", "name", "ref", "needs", "expr"])
            and (.kind | IN("panel", "record", "alert"))
            and (.needs | all(IN("tail", "run", "rules")))
            and (.expr | type == "string" and length > 0 and (contains("$") | not)))
    ' "$tmp/queries.jsonl" >/dev/null || {
        echo "malformed line in the output of deploy/panel_queries.py"
        return 1
    }
    # One line per dashboard target, and the rule files' rules are there too.
    local targets listed
    targets=$(jq -s '[.[] | .. | objects | select(has("expr") and has("refId"))] | length' \
        dashboards/*.json)
    listed=$(jq -s '[.[] | select(.kind == "panel")] | length' "$tmp/queries.jsonl")
    if [[ $targets != "$listed" ]]; then
        echo "dashboards have $targets queries, panel_queries.py lists $listed"
        return 1
    fi
    jq -e -s 'any(.[]; .kind == "alert") and any(.[]; .kind == "record")' \
        "$tmp/queries.jsonl" >/dev/null
}

check_query_syntax() {
    # promtool parses each expression when it is written as a recording rule.
    jq -r -s '
        "groups:\n  - name: dashboard-queries\n    rules:",
        (to_entries[] | select(.value.kind == "panel")
            | "      - record: dashboard_query_\(.key)\n        expr: \(.value.expr | tojson)")
    ' "$tmp/queries.jsonl" >"$tmp/queries.rules.yml"
    promtool check rules "$tmp/queries.rules.yml"
}

if require "panel_queries.py" python3 python3-yaml jq; then
    check "panel_queries.py lists every dashboard and rule query" check_query_list
    if ((last_status == 0)) && require "dashboard PromQL" promtool; then
        check "promtool parses every dashboard query" check_query_syntax
    fi
fi

# --- Kubernetes ---------------------------------------------------------------------------

validate_core() {
    # Core objects must pass strict validation; the only warnings allowed are the missing
    # schemas of the two monitor kinds, which check-monitors.py covers.
    local rendered=$1 out status=0
    local allowed="^WARN .*Couldn't find schema for kind (PodMonitor|ServiceMonitor)"
    allowed+=" with api version monitoring\\.coreos\\.com/v1 "
    out=$(kubernetes-validate --strict -k "$KUBE_MIN_VERSION" "$rendered" 2>&1 &&
        kubernetes-validate --strict "$rendered" 2>&1) || status=1
    printf '%s\n' "$out"
    if grep -v '^INFO ' <<<"$out" |
        grep -v -E "$allowed" |
        grep -q .; then
        status=1
    fi
    return "$status"
}

kustomize_dirs=("$KUBE/base")
for dir in "$KUBE"/overlays/*/; do
    kustomize_dirs+=("${dir%/}")
done
for dir in "${kustomize_dirs[@]}"; do
    rendered="$tmp/$(tr / _ <<<"$dir").yaml"
    if require "kustomize $dir" kubectl; then
        check "kubectl kustomize $dir" kubectl kustomize "$dir" -o "$rendered"
    fi
    ((last_status == 0)) && [[ -s $rendered ]] || continue
    if require "kubernetes-validate $dir" kubernetes-validate; then
        check "kubernetes-validate --strict $dir (k8s $KUBE_MIN_VERSION and latest)" \
            validate_core "$rendered"
    fi
    if require "monitors $dir" python3 python3-yaml; then
        check "check-monitors.py $dir" python3 deploy/check-monitors.py <"$rendered"
    fi
done

# --- Lint ---------------------------------------------------------------------------------

if require "yamllint" yamllint; then
    check "yamllint deploy/" yamllint --strict -c deploy/.yamllint.yml deploy/
fi
if require "hadolint" hadolint; then
    check "hadolint deploy/Dockerfile" hadolint --no-color deploy/Dockerfile
fi

# --- Dashboards ---------------------------------------------------------------------------

# Prints one line per problem found in a dashboard; nothing when it is sound.
# Metrics without a `source` label (the exporter's process-wide metrics and `up`) cannot be
# filtered by $source; every other selector must be. Every scraped metric is filtered by
# $job and $instance. Rates use $__rate_interval; increases use it too, or $__range in
# instant queries that total the selected time range.
read -r -d '' DASHBOARD_CHECK <<'JQ' || true
def all_panels: [.panels[]? | ., (.panels[]?)];
def sourceless: [
    "up", "containerkit_exporter_build_info", "containerkit_exporter_step_name_overflows_total",
    "containerkit_exporter_files_open", "containerkit_exporter_child_running",
    "containerkit_exporter_child_last_exit_code", "containerkit_exporter_child_start_time_seconds",
    "containerkit_exporter_passthrough_bytes_total"];
def metric: "containerkit_[a-zA-Z0-9_]+|containerkit:[a-zA-Z0-9_:]+|up";

(if ([.__inputs[]? | select(.type == "datasource" and .pluginId == "prometheus")] | length) == 1
 then empty else "__inputs: needs exactly one Prometheus data source input" end),
(if ([.__requires[]? | select(.id == "prometheus")] | length) == 1
 then empty else "__requires: Prometheus data source missing" end),
(if (.uid | type) == "string" and (.title | type) == "string"
 then empty else "uid or title missing" end),
(if .schemaVersion >= 36 then empty else "schemaVersion \(.schemaVersion) is too old" end),
(.templating.list as $vars |
  (if ([$vars[] | select(.name == "datasource" and .type == "datasource"
                         and .query == "prometheus")]
       | length) == 1
   then empty else "templating: no `datasource` variable of type datasource for Prometheus" end),
  (if ([$vars[] | select(.name == "source" and .type == "query" and .includeAll == true
                         and .multi == true
                         and ((.query | if type == "object" then .query else . end)
                              | test("^label_values\\(containerkit_[a-z_]+\\{job=~\"\\$job\", instance=~\"\\$instance\"\\}, source\\)$")))]
       | length) == 1
   then empty
   else "templating: no `source` query variable label_values(containerkit_...{job, instance "
        + "filters}, source) with includeAll and multi" end),
  ($vars[] | select(.type == "query" and .datasource.uid != "${datasource}")
   | "templating: variable \(.name) does not query ${datasource}")),
(all_panels | map(.id) | group_by(.) | map(select(length > 1))[] | "duplicate panel id \(.[0])"),
(all_panels[] | select(.id == null) | "panel \(.title | tojson) has no id"),
(all_panels[] | select(.type != "row") | . as $p | "panel \($p.id) \($p.title | tojson)" as $pw |
  (if $p.datasource.uid == "${datasource}"
   then empty else "\($pw): panel data source is not ${datasource}" end),
  (if ($p.gridPos | type) == "object" then empty else "\($pw): no gridPos" end),
  (if ($p.targets | length) > 0 then empty else "\($pw): no queries" end),
  (if ($p.type | IN("timeseries", "bargauge")) and ($p.fieldConfig.defaults.unit | type) != "string"
   then "\($pw): no unit" else empty end),
  ($p.targets | map(.refId) | group_by(.) | map(select(length > 1))[]
   | "\($pw): duplicate refId \(.[0])"),
  ($p.targets[] | . as $t | "\($pw) query \($t.refId)" as $w | ($t.expr // "") as $e |
    (if $t.datasource.uid == "${datasource}"
     then empty else "\($w): data source is not ${datasource}" end),
    (if $e == "" then "\($w): no expr" else empty end),
    (if ($t.format // "time_series") != "table" and (($t.legendFormat // "") | length) == 0
     then "\($w): no legend" else empty end),
    ($e | [scan("(?<![a-zA-Z0-9_:])(" + metric + ")(?![a-zA-Z0-9_:{])")][]
     | "\($w): \(.[0]) has no label matchers"),
    ($e | [scan("(?<![a-zA-Z0-9_:])(" + metric + ")\\{([^}]*)\\}")][] | . as [$m, $sel] |
      (if ($m | test("^(containerkit_|up$)"))
          and (($sel | contains("job=~\"$job\""))
               and ($sel | contains("instance=~\"$instance\"")) | not)
       then "\($w): \($m) is not filtered by $job and $instance" else empty end),
      (if ($m | IN(sourceless[])) or ($sel | contains("source=~\"$source\""))
       then empty else "\($w): \($m) is not filtered by $source" end)),
    ($e | [scan("\\[([^\\]]*)\\]")][] | .[0]
      | select(. != "$__rate_interval" and . != "$__range")
      | "\($w): range [\(.)] is neither $__rate_interval nor $__range"),
    ($e | [scan("\\b(i?rate)\\([^\\[]*\\[([^\\]]*)\\]")][] | select(.[1] != "$__rate_interval")
      | "\($w): \(.[0]) over [\(.[1])] instead of $__rate_interval"),
    (if ($e | contains("[$__range]")) and ($t.instant != true)
     then "\($w): [$__range] belongs in an instant query" else empty end)))
JQ

check_dashboard() {
    local file=$1 problems
    problems=$(jq -r "$DASHBOARD_CHECK" "$file") || return 1
    [[ -z $problems ]] || {
        printf '%s\n' "$problems"
        return 1
    }
}

for file in dashboards/*.json; do
    if require "dashboard $file" jq; then
        check "dashboard structure $file" check_dashboard "$file"
    fi
done

# --- systemd ------------------------------------------------------------------------------

check_unit_verify() {
    # The binary is not installed here, and verify rejects an ExecStart that does not
    # exist: verify a copy whose ExecStart points at a stub. verify exits 0 even for unknown
    # keys, so any output counts as a failure.
    local stub=$tmp/containerkit-exporter-stub out
    printf '#!/bin/sh\n' >"$stub"
    chmod +x "$stub"
    mkdir -p "$tmp/unit"
    sed "s#/usr/local/bin/containerkit-exporter#$stub#" "$UNIT" \
        >"$tmp/unit/containerkit-exporter.service"
    out=$(systemd-analyze verify --man=no "$tmp/unit/containerkit-exporter.service" 2>&1) || {
        printf '%s\n' "$out"
        return 1
    }
    [[ -z $out ]] || {
        printf '%s\n' "$out"
        return 1
    }
}

if require "systemd-analyze verify" systemd-analyze; then
    check "systemd-analyze verify $UNIT" check_unit_verify
    exposure="$((UNIT_EXPOSURE_MAX / 10)).$((UNIT_EXPOSURE_MAX % 10))"
    check "systemd-analyze security $UNIT (exposure at most $exposure)" \
        systemd-analyze security --offline=yes --threshold="$UNIT_EXPOSURE_MAX" "$UNIT"
fi

echo
echo "deploy: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
