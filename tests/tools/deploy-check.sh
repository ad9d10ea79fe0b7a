#!/usr/bin/env bash
# Checks the Kubernetes packaging in deploy/ against a real Kubernetes API server:
#
#   1. helm lint --strict of the chart, with its default values and each file in its ci/
#      (one enables the Ingress and the ServiceMonitor, every optional part in fact).
#   2. Bad values are refused through values.schema.json, by helm lint and helm template.
#   3. The CRDs (deploy/crds/, the same files as the chart's crds/) are installed with
#      server-side apply; then helm template of the chart (defaults and each ci/ file) is
#      piped into kubectl apply --dry-run=server, so the API server validates every object.
#      The Prometheus Operator's CRD is not available offline: a stand-in CRD
#      servicemonitors.monitoring.coreos.com that accepts any spec is installed for the
#      dry-run, so the ServiceMonitor's kind and metadata are checked by the server, its spec
#      only by the schema-less stand-in (and by helm lint).
#   4. kubectl kustomize deploy/kustomize/base | kubectl apply --dry-run=server.
#   5. The kustomize base is the chart's default rendering (release `sluice` in sluice-system)
#      less the Secret: the same objects, RBAC rules, settings and pod spec, as the server
#      returned them.
#   6. A real helm install, upgrade and uninstall (namespace sluice-deploy-check) keeps the
#      generated secret key and admin token; while it is installed, the API server's RBAC
#      authorizer is asked what the controller's ServiceAccount may and may not do.
#
# helm and kubectl are taken from $SLUICE_TEST_KUBE_BIN and the cluster from $KUBECONFIG;
# both default to what `tests/services/services.sh up` (make services) wrote into
# .sluice/services.env. The check creates the namespaces sluice-system and sluice-deploy-check
# and the CRDs in that cluster (it is a test cluster); apart from step 6, whose release it
# removes again, everything else is a dry run.
#
# Exit status 0 when every check passes; otherwise 1 with one line saying what failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"

CHART=deploy/helm/sluice
BASE=deploy/kustomize/base
NAMESPACE=sluice-system
RELEASE=sluice
CRD_FILES=(datasets.sluice.dev.yaml targetclusters.sluice.dev.yaml dataproducts.sluice.dev.yaml)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

say() { echo "[deploy-check] $*"; }
fail() {
  echo "[deploy-check] FAILED: $*" >&2
  exit 1
}
# run REASON COMMAND...: on failure shows the command's output and fails with REASON.
run() {
  local reason="$1"; shift
  if ! "$@" > "$WORK/run.log" 2>&1; then
    cat "$WORK/run.log" >&2
    fail "$reason"
  fi
}
# run_to FILE REASON COMMAND...: as run, with the command's standard output in FILE.
run_to() {
  local file="$1" reason="$2"; shift 2
  if ! "$@" > "$file" 2> "$WORK/run.log"; then
    cat "$WORK/run.log" >&2
    fail "$reason"
  fi
}

# --- tools and cluster ----------------------------------------------------------------------

env_file="${SLUICE_ROOT:-$ROOT}/.sluice/services.env"
from_env_file() {
  if [[ -f "$env_file" ]]; then
    sed -n "s/^$1=//p" "$env_file" | tail -n 1
  fi
}
KUBE_BIN="${SLUICE_TEST_KUBE_BIN:-$(from_env_file SLUICE_TEST_KUBE_BIN)}"
KUBECONFIG="${KUBECONFIG:-$(from_env_file KUBECONFIG)}"
[[ -n "$KUBE_BIN" ]] || fail "SLUICE_TEST_KUBE_BIN is not set and not in $env_file: run \`make services\`"
[[ -n "$KUBECONFIG" ]] || fail "KUBECONFIG is not set and not in $env_file: run \`make services\`"
export KUBECONFIG
HELM="$KUBE_BIN/helm"
KUBECTL="$KUBE_BIN/kubectl"
[[ -x "$HELM" ]] || fail "no helm at $HELM: run \`make services\`"
[[ -x "$KUBECTL" ]] || fail "no kubectl at $KUBECTL: run \`make services\`"
command -v python3 >/dev/null || fail "python3 is needed to compare the chart with the kustomize base"

"$KUBECTL" version -o json > "$WORK/version.json" 2> "$WORK/version.err" \
  || fail "cannot reach the Kubernetes API server of $KUBECONFIG ($(tail -n 1 "$WORK/version.err")): run \`make services\`"
# helm renders for the server's version (a helm built without release flags assumes v1.20).
KUBE_VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serverVersion"]["gitVersion"])' "$WORK/version.json")" \
  || fail "cannot read the API server's version from kubectl version"
say "API server $KUBE_VERSION ($KUBECONFIG); $("$HELM" version --short 2>/dev/null || echo helm)"

for f in "${CRD_FILES[@]}"; do
  [[ -s "deploy/crds/$f" ]] || fail "deploy/crds/$f is missing: generate the CRDs with \`sluice crd --out deploy/crds\`"
  [[ -s "$CHART/crds/$f" ]] || fail "$CHART/crds/$f is missing: generate the CRDs into the chart too"
  cmp -s "deploy/crds/$f" "$CHART/crds/$f" \
    || fail "$CHART/crds/$f differs from deploy/crds/$f: regenerate both with \`sluice crd\`"
done

CI_VALUES=("$CHART"/ci/*-values.yaml)
[[ -f "${CI_VALUES[0]}" ]] || fail "no values files in $CHART/ci/"

# --- 1. helm lint -----------------------------------------------------------------------------

run "helm lint --strict $CHART (default values)" \
  "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART"
for values in "${CI_VALUES[@]}"; do
  run "helm lint --strict $CHART -f $values" \
    "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" -f "$values"
done
say "helm lint --strict: default values and ${#CI_VALUES[@]} ci/ values files pass"

# --- 2. bad values are refused by the schema ----------------------------------------------------

# Each entry: a --set argument, then the JSON pointer the schema error must name.
BAD_VALUES=(
  "replicaCount=two" "/replicaCount"
  "replicaCounts=2" "replicaCounts"
  "image.pullPolicy=Sometimes" "/image/pullPolicy"
  "config.jobs=maybe" "/config/jobs"
  "config.controllerResync=soon" "/config/controllerResync"
  "config.kafkaReplication=0" "/config/kafkaReplication"
  "secrets.databaseUrl=mysql://db/sluice" "/secrets/databaseUrl"
  "config.oidc.issuer=https://login.example.com" "/config/oidc/audience"
  "ingress.hosts[0].paths[0].pathType=Anything" "/ingress/hosts/0/paths/0/pathType"
)
for ((i = 0; i < ${#BAD_VALUES[@]}; i += 2)); do
  set_arg="${BAD_VALUES[i]}" pointer="${BAD_VALUES[i + 1]}"
  for verb in lint template; do
    if "$HELM" "$verb" --kube-version "$KUBE_VERSION" "$CHART" --set "$set_arg" > "$WORK/bad.log" 2>&1; then
      fail "helm $verb accepted the bad value --set $set_arg"
    fi
    grep -qF -- "$pointer" "$WORK/bad.log" \
      || { cat "$WORK/bad.log" >&2; fail "helm $verb refused --set $set_arg but not naming $pointer"; }
  done
done
say "values.schema.json: $((${#BAD_VALUES[@]} / 2)) bad values refused by helm lint and helm template"

# --- 3. the chart against the API server ----------------------------------------------------------

run "kubectl apply --server-side of the CRDs in $CHART/crds" \
  "$KUBECTL" apply --server-side --force-conflicts --field-manager=sluice-deploy-check -f "$CHART/crds/"
# Stand-in for the Prometheus Operator's CRD (not available offline): any spec is accepted.
run "installing the stand-in ServiceMonitor CRD" "$KUBECTL" apply --server-side \
  --field-manager=sluice-deploy-check -f - <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
  annotations:
    sluice.dev/note: stand-in for the Prometheus Operator CRD, installed by tests/tools/deploy-check.sh
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
YAML
run "the CRDs did not become Established" \
  "$KUBECTL" wait --for condition=Established --timeout=60s \
  crd/datasets.sluice.dev crd/targetclusters.sluice.dev crd/dataproducts.sluice.dev \
  crd/servicemonitors.monitoring.coreos.com
# A dry run cannot create objects inside a namespace that a dry run created.
if ! "$KUBECTL" get namespace "$NAMESPACE" > /dev/null 2>&1; then
  run "creating namespace $NAMESPACE" "$KUBECTL" create namespace "$NAMESPACE"
fi
run "sluice.dev resources are not served" "$KUBECTL" get dataproducts,datasets,targetclusters -A

# Renders the chart with the given helm args into $WORK/NAME.yaml and dry-runs it on the server
# (the server's view of every object in $WORK/NAME.json).
dry_run_chart() {
  local name="$1"; shift
  run_to "$WORK/$name.yaml" "helm template $CHART ${*:-(default values)}" \
    "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" "$@"
  run_to "$WORK/$name.json" "kubectl apply --dry-run=server refused the chart rendered with ${*:-default values}" \
    "$KUBECTL" apply --dry-run=server --field-manager=sluice-deploy-check -o json -f "$WORK/$name.yaml"
  say "chart (${*:-default values}): $(grep -c '^kind: ' "$WORK/$name.yaml") objects accepted by the API server (dry run)"
}
dry_run_chart chart-default
for values in "${CI_VALUES[@]}"; do
  dry_run_chart "chart-$(basename "$values" .yaml)" -f "$values"
done
grep -q '^kind: Ingress$' "$WORK/chart-full-values.yaml" || fail "ci/full-values.yaml rendered no Ingress"
grep -q '^kind: ServiceMonitor$' "$WORK/chart-full-values.yaml" || fail "ci/full-values.yaml rendered no ServiceMonitor"
grep -q '^kind: PodDisruptionBudget$' "$WORK/chart-full-values.yaml" || fail "ci/full-values.yaml rendered no PodDisruptionBudget"

# --- 4. the kustomize base ----------------------------------------------------------------------

run_to "$WORK/kustomize.yaml" "kubectl kustomize $BASE" "$KUBECTL" kustomize "$BASE"
run_to "$WORK/kustomize.json" "kubectl apply --dry-run=server refused the kustomize base" \
  "$KUBECTL" apply --dry-run=server --field-manager=sluice-deploy-check -o json -f "$WORK/kustomize.yaml"
say "kustomize base: $(grep -c '^kind: ' "$WORK/kustomize.yaml") objects accepted by the API server (dry run)"

# --- 5. the kustomize base matches the chart's defaults -----------------------------------------

python3 - "$WORK/chart-default.json" "$WORK/kustomize.json" <<'PY' || fail "the kustomize base differs from the chart's default rendering (above)"
import json, sys

def objects(path):
    """The objects of `kubectl apply -o json`: one object, a List, or several in a row."""
    text, out, pos = open(path).read(), [], 0
    decoder = json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        out.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return {(o["kind"], o["metadata"]["name"]): o for o in out}

chart, kust = objects(sys.argv[1]), objects(sys.argv[2])
problems = []
expected = (set(chart) - {("Secret", "sluice")}) | {("Namespace", "sluice-system")} | {
    ("CustomResourceDefinition", n)
    for n in ("datasets.sluice.dev", "targetclusters.sluice.dev", "dataproducts.sluice.dev")
}
if set(kust) != expected:
    problems.append(f"objects: chart-only {sorted(expected - set(kust))}, kustomize-only {sorted(set(kust) - expected)}")

def differences(a, b, path=""):
    """Where two JSON values differ, as `path: chart … kustomize …` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if a != b:
        return [f"  {path or '.'}: chart {json.dumps(a, sort_keys=True)}, kustomize {json.dumps(b, sort_keys=True)}"]
    return []

def compare(key, what, get):
    if key in chart and key in kust:
        found = differences(get(chart[key]), get(kust[key]))
        if found:
            problems.append(f"{key[0]} {key[1]}: {what} differ:\n" + "\n".join(found))

compare(("ClusterRole", "sluice"), "rules", lambda o: o["rules"])
compare(("Role", "sluice-leader-election"), "rules", lambda o: o["rules"])
compare(("ClusterRoleBinding", "sluice"), "roleRef and subjects", lambda o: [o["roleRef"], o["subjects"]])
compare(("RoleBinding", "sluice-leader-election"), "roleRef and subjects", lambda o: [o["roleRef"], o["subjects"]])
compare(("ConfigMap", "sluice"), "data", lambda o: o.get("data"))
compare(("Service", "sluice"), "type, ports and selector",
        lambda o: [o["spec"]["type"], o["spec"]["ports"], o["spec"]["selector"]])
compare(("Deployment", "sluice"), "replicas, selector and strategy",
        lambda o: [o["spec"]["replicas"], o["spec"]["selector"], o["spec"]["strategy"]])
compare(("Deployment", "sluice"), "pod specs", lambda o: o["spec"]["template"]["spec"])
for key, obj in kust.items():
    if obj["metadata"].get("namespace", "sluice-system") != "sluice-system":
        problems.append(f"{key[0]} {key[1]} is in namespace {obj['metadata']['namespace']}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"[deploy-check] kustomize base = chart defaults less the Secret: {len(kust)} objects, same RBAC, settings and pod spec")
PY

# --- 6. a real install keeps its generated secrets ----------------------------------------------

# The chart generates SLUICE_SECRET_KEY and SLUICE_ADMIN_TOKEN once and reads them back from
# the live Secret on upgrade (lookup), which only a real install exercises. The API server has
# no kubelet, so the Deployment never gets pods; nothing waits for them.
INSTALL_NS=sluice-deploy-check
INSTALL_RELEASE=deploy-check
if ! "$KUBECTL" get namespace "$INSTALL_NS" > /dev/null 2>&1; then
  run "creating namespace $INSTALL_NS" "$KUBECTL" create namespace "$INSTALL_NS"
fi
secret_of() {
  "$KUBECTL" -n "$INSTALL_NS" get secret "$INSTALL_RELEASE-sluice" \
    -o jsonpath='{.data.SLUICE_SECRET_KEY}{"/"}{.data.SLUICE_ADMIN_TOKEN}'
}
run "helm upgrade --install $INSTALL_RELEASE (first)" \
  "$HELM" upgrade --install "$INSTALL_RELEASE" "$CHART" --namespace "$INSTALL_NS" --skip-crds
first="$(secret_of)" || fail "the installed release has no Secret $INSTALL_RELEASE-sluice"
[[ "$first" =~ ^[A-Za-z0-9+/=]{20,}/[A-Za-z0-9+/=]{20,}$ ]] || fail "the generated secret key or admin token is empty"
run "helm upgrade $INSTALL_RELEASE" "$HELM" upgrade "$INSTALL_RELEASE" "$CHART" --namespace "$INSTALL_NS" \
  --skip-crds --set config.kafkaBootstrap=kafka.example.com:9092
[[ "$(secret_of)" == "$first" ]] || fail "helm upgrade changed the generated SLUICE_SECRET_KEY or SLUICE_ADMIN_TOKEN"

# What the installed ServiceAccount may do, asked of the API server's RBAC authorizer:
# "yes|no VERB RESOURCE NAMESPACE" (namespace - for a cluster-wide question).
SA="system:serviceaccount:$INSTALL_NS:$INSTALL_RELEASE-sluice"
CAN_I=(
  "yes watch dataproducts.sluice.dev -"
  "yes patch dataproducts.sluice.dev team-a"
  "yes patch dataproducts.sluice.dev/status team-a"
  "yes update datasets.sluice.dev/status -"
  "yes update targetclusters.sluice.dev/finalizers -"
  "yes list namespaces -"
  "yes create deployments.apps team-a"
  "yes delete statefulsets.apps team-a"
  "yes create secrets team-a"
  "yes patch services team-a"
  "yes create poddisruptionbudgets.policy team-a"
  "yes create events team-a"
  "yes patch events.events.k8s.io team-a"
  "yes update leases.coordination.k8s.io $INSTALL_NS"
  "no create leases.coordination.k8s.io team-a"
  "no create dataproducts.sluice.dev team-a"
  "no delete datasets.sluice.dev -"
  "no delete namespaces -"
  "no get pods team-a"
  "no get configmaps team-a"
  "no create clusterrolebindings.rbac.authorization.k8s.io -"
  "no escalate clusterroles.rbac.authorization.k8s.io -"
)
for question in "${CAN_I[@]}"; do
  read -r want verb resource ns <<< "$question"
  resource_args=("$resource")
  if [[ "$resource" == */* ]]; then
    resource_args=("${resource%%/*}" "--subresource=${resource#*/}")
  fi
  scope=(--all-namespaces)
  [[ "$ns" == - ]] || scope=(--namespace "$ns")
  got="$("$KUBECTL" auth can-i "$verb" "${resource_args[@]}" "${scope[@]}" --as "$SA" 2>/dev/null || true)"
  [[ "$got" == "$want" ]] \
    || fail "RBAC: can the controller $verb $resource in ${ns/#-/every namespace}? the API server says '${got:-nothing}', the chart means '$want'"
done
say "RBAC: ${#CAN_I[@]} questions to the API server's authorizer answered as intended"
run "helm uninstall $INSTALL_RELEASE" "$HELM" uninstall "$INSTALL_RELEASE" --namespace "$INSTALL_NS"
[[ "$(secret_of)" == "$first" ]] || fail "helm uninstall removed the Secret holding the secret key"
run "deleting the kept Secret" "$KUBECTL" -n "$INSTALL_NS" delete secret "$INSTALL_RELEASE-sluice"
say "install, upgrade, uninstall: generated secret key and admin token kept"

say "all checks passed"
