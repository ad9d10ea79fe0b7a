#!/usr/bin/env bash
# Run a real Kubernetes API server for Sluice's tests, the way controller-runtime's envtest
# does: etcd + kube-apiserver on loopback, no kubelet, no controller-manager, no scheduler
# (so a Deployment is stored but never gets pods). kubectl and helm come with it.
#
# Nothing is downloaded prebuilt: `install` builds the four binaries from the Go module proxy
# with the machine's Go, once, into $SLUICE_CACHE/kube/<kubernetes version>/bin/:
#   kube-apiserver, kubectl  k8s.io/kubernetes (its staging modules k8s.io/* pinned to their
#                            published v0.X.Y twins by a small build module)
#   etcd                     go.etcd.io/etcd/server/v3 (the etcd version Kubernetes names in
#                            hack/lib/etcd.sh and build/dependencies.yaml)
#   helm                     helm.sh/helm/v3/cmd/helm
# A build from nothing takes about 10 minutes on 2 cores and fills Go's module cache (~1.1 GB)
# and build cache (~3.6 GB); later runs reuse the binaries (see docs/development.md).
#
# Usage: tests/services/kube.sh install|start|stop|restart|status|kubeconfig|bin
#   install     build the binaries unless they are there (prints their versions)
#   start       install if needed, start etcd and kube-apiserver (a healthy running one is
#               reused), wait for /readyz, write the kubeconfig
#   stop        stop kube-apiserver, then etcd (the etcd data is kept for the next start)
#   status      exit 0 when the API server is ready
#   kubeconfig  print the kubeconfig's path (admin token, CA data, namespace default)
#   bin         print the directory of kube-apiserver, kubectl, etcd and helm
#
# Environment:
#   SLUICE_ROOT                 state root (default: repo root); state lives in
#                               $SLUICE_ROOT/.sluice/kube/
#   SLUICE_CACHE                build cache (default: ~/.cache/sluice); the Go module and
#                               build caches are Go's own (GOMODCACHE, GOCACHE)
#   SLUICE_KUBE_PORT            kube-apiserver's HTTPS port (default 16443)
#   SLUICE_ETCD_PORT            etcd's client port (default 12379)
#   SLUICE_ETCD_PEER_PORT       etcd's peer port (default 12380)
#   SLUICE_KUBE_START_TIMEOUT   seconds to wait for /readyz (default 120)
#   SLUICE_KUBE_STOP_TIMEOUT    seconds before SIGKILL on stop (default 30)
set -Eeuo pipefail
NAME=kube
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The versions built. Kubernetes 1.37 names etcd 3.7.0 (hack/lib/etcd.sh, kubeadm's
# DefaultEtcdVersion) and helm 3.22 is built against the 1.37 client libraries.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
HELM_VERSION=v3.22.0
# Go that Kubernetes' go.mod asks for (go 1.26.0).
GO_MIN_MINOR=26

PORT="${SLUICE_KUBE_PORT:-16443}"
ETCD_PORT="${SLUICE_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${SLUICE_ETCD_PEER_PORT:-12380}"
START_TIMEOUT="${SLUICE_KUBE_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SLUICE_KUBE_STOP_TIMEOUT:-30}"

KUBE_CACHE="$SLUICE_CACHE/kube"
BIN_DIR="$KUBE_CACHE/$KUBE_VERSION/bin"
VERSIONS_FILE="$KUBE_CACHE/$KUBE_VERSION/VERSIONS"
BUILD_DIR="$KUBE_CACHE/build"

K_DIR="$STATE_DIR/kube"
PKI="$K_DIR/pki"
ETCD_DATA="$K_DIR/etcd"
ETCD_PID="$K_DIR/etcd.pid"
ETCD_LOG="$K_DIR/etcd.log"
API_PID="$K_DIR/apiserver.pid"
API_LOG="$K_DIR/apiserver.log"
TOKEN_FILE="$K_DIR/admin.token"
KUBECONFIG_FILE="$K_DIR/kubeconfig"
SERVER="https://127.0.0.1:$PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

# Names the command that failed, so a `set -e` exit is never silent (-E: in functions too).
trap 'rc=$?; err "error: line $LINENO: \"$BASH_COMMAND\" failed (exit $rc)"; exit $rc' ERR

# --- install ---------------------------------------------------------------

# Serialises installs (two checkouts may share the cache). Holds fd 8 until exit.
install_lock() {
  mkdir -p "$KUBE_CACHE"
  if command -v flock >/dev/null; then
    exec 8>"$KUBE_CACHE/.install.lock"
    if ! flock -n 8; then
      say "another install is running; waiting for it"
      flock 8
    fi
  fi
}

check_go() {
  command -v go >/dev/null || die "go not found; the machine image should provide Go 1.$GO_MIN_MINOR or newer"
  local v
  v="$(go env GOVERSION)"
  [[ "$v" =~ ^go1\.([0-9]+) ]] || die "cannot read Go's version (go env GOVERSION: '$v')"
  ((BASH_REMATCH[1] >= GO_MIN_MINOR)) || die "Go 1.$GO_MIN_MINOR or newer needed, found $v"
}

# The go command as the builds run it: no workspace, no cgo (Kubernetes builds these binaries
# statically), and none of the caller's GOFLAGS.
gocmd() {
  env GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 go "$@"
}

# True when BIN_DIR has NAME built at VERSION (per VERSIONS_FILE).
built() {
  local name="$1" version="$2"
  [[ -x "$BIN_DIR/$name" && -f "$VERSIONS_FILE" ]] &&
    awk -v n="$name" -v v="$version" '$1 == n && $2 == v { found = 1 } END { exit !found }' \
      "$VERSIONS_FILE"
}

# record NAME VERSION MODULE: notes a finished binary in VERSIONS_FILE.
record() {
  local name="$1" version="$2" module="$3" tmp="$VERSIONS_FILE.tmp"
  {
    echo "# Built by tests/services/kube.sh install; name version module go"
    if [[ -f "$VERSIONS_FILE" ]]; then grep -v -e '^#' -e "^$name " "$VERSIONS_FILE" || true; fi
    echo "$name $version $module $(go env GOVERSION)"
  } >"$tmp"
  mv "$tmp" "$VERSIONS_FILE"
}

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run_build LABEL LOG TOTAL CMD...: runs a go build in the background with `-v` output in LOG
# and prints progress every 30 s (packages compiled so far of about TOTAL). On failure prints
# the end of LOG and exits.
run_build() {
  local label="$1" log="$2" total="$3" pid rc=0 t0=$SECONDS last=$SECONDS done_n
  shift 3
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 30)); then
      last=$SECONDS
      done_n="$(grep -c -v -e '^#' -e ' ' "$log" 2>/dev/null || true)"
      say "  $label: $(fmt_secs $((SECONDS - t0))), ${done_n:-0} of ~$total packages compiled"
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    err "$label failed (exit $rc); last lines of $log:"
    tail -n 40 "$log" >&2 || true
    die "building $label failed"
  fi
  say "  $label built in $(fmt_secs $((SECONDS - t0)))"
}

# Number of packages `go build` compiles for PKGS in the build module DIR (for progress; it
# prints "?" when unknown).
dep_count() {
  local dir="$1" n
  shift
  n="$(gocmd list -C "$dir" -deps "$@" 2>/dev/null | wc -l)" || n=""
  [[ "${n:-0}" -gt 0 ]] && echo "$n" || echo "?"
}

# prepare_module DIR MODULE VERSION PACKAGES [REPLACES]: writes a build module in DIR that
# requires MODULE@VERSION (with the go and godebug lines of MODULE's own go.mod, so the
# binaries get its language version and GODEBUG defaults), plus REPLACES (go.mod replace
# lines), and resolves PACKAGES (adds go.sum).
prepare_module() {
  local dir="$1" module="$2" version="$3" packages="$4" replaces="${5:-}" gomod pkg
  mkdir -p "$dir"
  gomod="$(gocmd list -C "$BUILD_DIR" -m -f '{{.GoMod}}' "$module@$version")" ||
    die "could not fetch $module@$version from the Go module proxy ($(go env GOPROXY))"
  [[ -f "$gomod" ]] || die "no go.mod of $module@$version at '$gomod'"
  {
    echo "// Generated by tests/services/kube.sh: builds $packages."
    echo "module sluice.test/build"
    echo
    grep -m1 '^go ' "$gomod"
    sed -n -e '/^godebug (/,/^)/p' -e '/^godebug [^(]/p' "$gomod"
    echo
    echo "require $module $version"
    [[ -z "$replaces" ]] || printf '\nreplace (\n%s)\n' "$replaces"
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
  local args=()
  for pkg in $packages; do args+=("$pkg@$version"); done
  gocmd get -C "$dir" "${args[@]}" >"$dir/get.log" 2>&1 ||
    { tail -n 30 "$dir/get.log" >&2; die "resolving $module@$version failed (see $dir/get.log)"; }
}

# build_binary DIR NAME VERSION PACKAGE MODULE LDFLAGS [TAGS]: go build in the module DIR into
# BIN_DIR/NAME (through a temporary name, so an interrupted build leaves nothing).
build_binary() {
  local dir="$1" name="$2" version="$3" pkg="$4" module="$5" ldflags="$6" tags="${7:-}"
  run_build "$name" "$dir/build-$name.log" "$(dep_count "$dir" -tags "$tags" "$pkg")" \
    gocmd build -C "$dir" -v -trimpath -tags "$tags" -ldflags "$ldflags" -o "$BIN_DIR/.$name.tmp" "$pkg"
  mv -f "$BIN_DIR/.$name.tmp" "$BIN_DIR/$name"
  record "$name" "$version" "$module@$version"
}

# kube-apiserver and kubectl. k8s.io/kubernetes replaces its staging modules (k8s.io/api,
# k8s.io/apiserver, ...) with directories of its own repository, so `go install` refuses it;
# the build module replaces each of them with its published twin (v1.X.Y -> v0.X.Y), the list
# read from Kubernetes' own replace block. Build tags, static linking and the version stamps
# are those of hack/lib/golang.sh and hack/lib/version.sh, so `--version`, kubectl's version
# skew check and client-go's user agent say v1.X.Y; the build date is the module's publish
# time (reproducible).
build_kubernetes() {
  local dir="$BUILD_DIR/kubernetes-$KUBE_VERSION" staging_version="v0.${KUBE_VERSION#v1.}"
  local gomod names replaces="" n time minor ldflags="-s -w" pkg
  say "building kube-apiserver and kubectl $KUBE_VERSION from k8s.io/kubernetes (the longest part)"
  mkdir -p "$BUILD_DIR"
  gomod="$(gocmd list -C "$BUILD_DIR" -m -f '{{.GoMod}}' "k8s.io/kubernetes@$KUBE_VERSION")" ||
    die "could not fetch k8s.io/kubernetes@$KUBE_VERSION from the Go module proxy ($(go env GOPROXY))"
  names="$(sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*|\1|p' "$gomod")"
  [[ -n "$names" ]] || die "found no staging replace lines in $gomod"
  for n in $names; do replaces+="	$n => $n $staging_version"$'\n'; done
  say "  resolving k8s.io/kubernetes $KUBE_VERSION, its $(wc -w <<<"$names") staging modules at $staging_version"
  prepare_module "$dir" k8s.io/kubernetes "$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl" "$replaces"
  time="$(gocmd list -C "$BUILD_DIR" -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' \
    "k8s.io/kubernetes@$KUBE_VERSION")"
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$time"
  done
  for n in kube-apiserver kubectl; do
    built "$n" "$KUBE_VERSION" && continue
    build_binary "$dir" "$n" "$KUBE_VERSION" "k8s.io/kubernetes/cmd/$n" k8s.io/kubernetes \
      "$ldflags" selinux,notest,grpcnotrace
  done
}

# etcd's modules replace each other with relative paths too, so `go install` refuses them; as
# a dependency of a build module they resolve normally. The server module's root package is
# etcd's main (it calls etcdmain.Main).
build_etcd() {
  local dir="$BUILD_DIR/etcd-$ETCD_VERSION"
  say "building etcd $ETCD_VERSION from go.etcd.io/etcd/server/v3"
  prepare_module "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  build_binary "$dir" etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 "-s -w"
}

# helm, with the ldflags of helm's Makefile: its version, and the Kubernetes version of its
# client libraries (`helm template`'s default .Capabilities.KubeVersion).
build_helm() {
  local dir="$BUILD_DIR/helm-$HELM_VERSION" client_go minor ldflags pkg
  say "building helm $HELM_VERSION from helm.sh/helm/v3"
  prepare_module "$dir" helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  client_go="$(gocmd list -C "$dir" -m -f '{{.Version}}' k8s.io/client-go)"
  minor="$(sed -n 's/^v0\.\([0-9]*\)\..*/\1/p' <<<"$client_go")"
  [[ -n "$minor" ]] || die "cannot read helm's k8s.io/client-go version ('$client_go')"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  build_binary "$dir" helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm.sh/helm/v3 "$ldflags"
}

# Prints the versions the binaries report themselves.
report_versions() {
  local api kctl etcd helm
  api="$("$BIN_DIR/kube-apiserver" --version 2>/dev/null | awk '{print $2}')"
  kctl="$("$BIN_DIR/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p')"
  etcd="$("$BIN_DIR/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p')"
  helm="$("$BIN_DIR/helm" version --short 2>/dev/null)"
  say "kube-apiserver $api, kubectl $kctl, etcd $etcd, helm $helm in $BIN_DIR"
}

cmd_install() {
  if built kube-apiserver "$KUBE_VERSION" && built kubectl "$KUBE_VERSION" &&
     built etcd "$ETCD_VERSION" && built helm "$HELM_VERSION"; then
    report_versions
    return 0
  fi
  install_lock
  check_go
  mkdir -p "$BIN_DIR" "$BUILD_DIR"
  local t0=$SECONDS
  say "building Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION and helm $HELM_VERSION with $(go env GOVERSION)"
  say "from the Go module proxy into $BIN_DIR; a build from nothing takes about 10 minutes on 2 cores"
  { built kube-apiserver "$KUBE_VERSION" && built kubectl "$KUBE_VERSION"; } || build_kubernetes
  built etcd "$ETCD_VERSION" || build_etcd
  built helm "$HELM_VERSION" || build_helm
  say "installed in $(fmt_secs $((SECONDS - t0))) ($(du -sh "$BIN_DIR" | cut -f1) of binaries)"
  report_versions
}

# --- certificates and credentials -------------------------------------------

# A CA, a serving certificate for 127.0.0.1/localhost signed by it, a service-account key
# pair and an admin token; made once, kept across restarts (so a kubeconfig stays valid).
ensure_pki() {
  command -v openssl >/dev/null || die "openssl not found; run tests/services/deps.sh"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s "$PKI/ca.crt" || ! -s "$PKI/ca.key" ]]; then
    say "making a CA and keys in $PKI"
    rm -f "$PKI/apiserver.crt"
    (umask 077
     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
       -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=sluice-test-kube-ca" \
       -addext "basicConstraints=critical,CA:TRUE" \
       -addext "keyUsage=critical,keyCertSign,cRLSign" >"$PKI/openssl.log" 2>&1) ||
      { cat "$PKI/openssl.log" >&2; die "openssl could not make the CA"; }
  fi
  if [[ ! -s "$PKI/apiserver.crt" || ! -s "$PKI/apiserver.key" ]]; then
    cat >"$PKI/apiserver.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.96.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
EXT
    (umask 077
     openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
       -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" &&
     openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
       -CAcreateserial -days 3650 -sha256 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt"
    ) >"$PKI/openssl.log" 2>&1 || { cat "$PKI/openssl.log" >&2; die "openssl could not make the serving certificate"; }
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -s "$PKI/sa.key" || ! -s "$PKI/sa.pub" ]]; then
    (umask 077
     openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" &&
     openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub") >"$PKI/openssl.log" 2>&1 ||
      { cat "$PKI/openssl.log" >&2; die "openssl could not make the service-account keys"; }
  fi
  # Static token file: token,user,uid,"groups". system:masters is bound to cluster-admin.
  (umask 077; printf '%s,sluice-admin,sluice-admin,"system:masters"\n' \
    "$(password_in "$TOKEN_FILE")" >"$K_DIR/tokens.csv")
}

write_kubeconfig() {
  local tmp="$KUBECONFIG_FILE.tmp" ca_data
  ca_data="$(base64 -w0 <"$PKI/ca.crt")"
  (umask 077; cat >"$tmp" <<EOF
# Written by tests/services/kube.sh: the local test API server, as an admin (system:masters).
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: $SERVER
    certificate-authority-data: $ca_data
users:
- name: sluice-admin
  user:
    token: $(password_in "$TOKEN_FILE")
contexts:
- name: sluice-test
  context:
    cluster: sluice-test
    user: sluice-admin
    namespace: default
current-context: sluice-test
EOF
  )
  chmod 600 "$tmp"
  mv "$tmp" "$KUBECONFIG_FILE"
}

# --- processes ---------------------------------------------------------------

# Serialises start/stop of the state dir. Holds fd 9 until the script exits.
state_lock() {
  mkdir -p "$K_DIR"
  if command -v flock >/dev/null; then
    exec 9>"$K_DIR/.lock"
    flock -w "$((START_TIMEOUT + 2 * STOP_TIMEOUT + 60))" 9 || die "could not lock $K_DIR/.lock"
  fi
}

# spawn PID_FILE LOG CMD...: starts CMD detached (setsid), output to LOG (the previous log is
# kept as LOG.1); the pid file names CMD itself.
spawn() {
  local pid_file="$1" log="$2"
  shift 2
  if [[ -f "$log" ]]; then mv -f "$log" "$log.1"; fi
  # shellcheck disable=SC2016 # single quotes on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" "$@" </dev/null >"$log" 2>&1 8>&- 9>&- &
  disown || true
}

# stop_proc LABEL PID_FILE PATTERN: SIGTERM, SIGKILL after STOP_TIMEOUT.
stop_proc() {
  local label="$1" pid_file="$2" pattern="$3" pid
  if ! pid_alive "$pid_file" "$pattern"; then
    rm -f "$pid_file"
    return 1
  fi
  pid="$(head -n 1 "$pid_file")"
  say "stopping $label (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      err "$label still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
}

etcd_alive() { pid_alive "$ETCD_PID" "$BIN_DIR/etcd"; }
api_alive() { pid_alive "$API_PID" "$BIN_DIR/kube-apiserver"; }

etcd_healthy() {
  curl -sf --max-time 3 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'
}

# GET PATH from the API server as the admin, TLS verified against our CA.
api_get() {
  [[ -s "$PKI/ca.crt" && -s "$TOKEN_FILE" ]] || return 1
  curl -sS --max-time 5 --cacert "$PKI/ca.crt" \
    -H "Authorization: Bearer $(cat "$TOKEN_FILE")" "$SERVER$1"
}

api_ready() {
  [[ "$(api_get /readyz 2>/dev/null)" == "ok" ]]
}

start_etcd() {
  if etcd_alive; then
    say "etcd already running (pid $(head -n 1 "$ETCD_PID"))"
  else
    rm -f "$ETCD_PID"
    port_free "$ETCD_PORT" || die "etcd's client port $ETCD_PORT is taken by another process"
    port_free "$ETCD_PEER_PORT" || die "etcd's peer port $ETCD_PEER_PORT is taken by another process"
    mkdir -p "$ETCD_DATA"
    chmod 700 "$ETCD_DATA"
    say "starting etcd $ETCD_VERSION on $ETCD_URL (data $ETCD_DATA)"
    # --unsafe-no-fsync as envtest: test data, a crash may lose the last writes.
    spawn "$ETCD_PID" "$ETCD_LOG" "$BIN_DIR/etcd" \
      --name sluice-test \
      --data-dir "$ETCD_DATA" \
      --listen-client-urls "$ETCD_URL" \
      --advertise-client-urls "$ETCD_URL" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "sluice-test=http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster-state new \
      --unsafe-no-fsync \
      --log-level warn
  fi
  local deadline=$((SECONDS + 30))
  until etcd_healthy; do
    if ! etcd_alive; then
      sleep 0.3
      etcd_alive || { log_tail "$ETCD_LOG"; rm -f "$ETCD_PID"; die "etcd exited during startup"; }
    fi
    ((SECONDS < deadline)) || { log_tail "$ETCD_LOG"; die "etcd did not become healthy within 30s"; }
    sleep 0.2
  done
}

start_apiserver() {
  rm -f "$API_PID"
  say "starting kube-apiserver $KUBE_VERSION on $SERVER"
  # Admission: the defaults less ServiceAccount, which would reject every pod for want of the
  # `default` ServiceAccount that only kube-controller-manager creates (as envtest does).
  # No endpoint reconciler: it refuses a loopback address for the `kubernetes` Service's
  # endpoints, and nothing here reaches the API server through that Service.
  spawn "$API_PID" "$API_LOG" "$BIN_DIR/kube-apiserver" \
    --etcd-servers "$ETCD_URL" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$PORT" \
    --cert-dir "$PKI" \
    --tls-cert-file "$PKI/apiserver.crt" \
    --tls-private-key-file "$PKI/apiserver.key" \
    --token-auth-file "$K_DIR/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none \
    --disable-admission-plugins ServiceAccount \
    --allow-privileged=true \
    --profiling=false
}

cmd_start() {
  if api_ready && etcd_alive; then
    [[ -s "$KUBECONFIG_FILE" ]] || write_kubeconfig
    say "already running on $SERVER"
    return 0
  fi
  cmd_install
  state_lock
  # Another start may have finished while this one waited for the lock.
  if api_ready && etcd_alive; then
    say "already running on $SERVER"
    return 0
  fi
  ensure_pki
  local t0=$SECONDS
  # Check the API server's port before etcd starts, so a clash leaves nothing running.
  if ! api_alive && port_open "$PORT"; then
    die "port $PORT is taken by another process"
  fi
  start_etcd
  if api_alive; then
    say "kube-apiserver already running (pid $(head -n 1 "$API_PID")); waiting for /readyz"
  else
    start_apiserver
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until api_ready; do
    if ! api_alive; then
      sleep 0.5
      api_alive || { log_tail "$API_LOG"; rm -f "$API_PID"; die "kube-apiserver exited during startup"; }
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$API_LOG"
      err "GET /readyz: $(api_get '/readyz?verbose' 2>&1 | grep -v '\[+\]' | tail -n 20)"
      die "kube-apiserver did not become ready within ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
  write_kubeconfig
  say "ready on $SERVER in $((SECONDS - t0))s (kubeconfig $KUBECONFIG_FILE)"
}

cmd_stop() {
  state_lock
  stop_proc kube-apiserver "$API_PID" "$BIN_DIR/kube-apiserver" || say "kube-apiserver not running"
  stop_proc etcd "$ETCD_PID" "$BIN_DIR/etcd" || say "etcd not running"
}

cmd_status() {
  if api_ready; then
    say "healthy on $SERVER (Kubernetes $KUBE_VERSION, etcd on $ETCD_URL)"
    return 0
  fi
  if api_alive; then
    say "kube-apiserver alive (pid $(head -n 1 "$API_PID")) but $SERVER/readyz is not ok"
  elif etcd_alive; then
    say "etcd running, kube-apiserver not running"
  else
    say "not running"
  fi
  return 1
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status || exit 1 ;;
  kubeconfig) echo "$KUBECONFIG_FILE" ;;
  bin) echo "$BIN_DIR" ;;
  *) echo "usage: $0 install|start|stop|restart|status|kubeconfig|bin" >&2; exit 2 ;;
esac
