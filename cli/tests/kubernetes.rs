//! Kubernetes mode against the real API server of `make services` (kube-apiserver and etcd
//! built from source, no kubelet): the CRDs install and the server enforces their schema; a
//! DataProduct applied with kubectl goes through approval in the API to Live, with its worker
//! objects, status, events and audit entries; hand edits of owned objects are reverted; the
//! finalizer tears the product down; of two replicas only the Lease holder acts, and killing
//! it hands over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

mod common;
use common::Serve;

const ADMIN_TOKEN: &str = "slc_kubernetes-admin-token-0123456789abcd";
const SECRET_KEY: &str = "kubernetes-secret-key-0123456789abcdef01";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn services() -> &'static sluice_tests::Services {
    sluice_tests::services()
}

/// A name no other run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// `kubectl ARGS` with `stdin`: success, stdout, stderr.
fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(Path::new(&services().kube_bin).join("kubectl"))
        .args(args)
        .env("KUBECONFIG", &services().kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl ARGS`, which must succeed: its stdout.
fn must_kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, stdout, stderr) = kubectl(args, stdin);
    assert!(ok, "kubectl {args:?}:\n{stdout}{stderr}");
    stdout
}

/// An object as JSON, or `None` when it does not exist.
fn get_json(args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let (ok, stdout, stderr) = kubectl(&all, None);
    if !ok {
        assert!(stderr.contains("NotFound"), "kubectl {all:?}: {stderr}");
        return None;
    }
    Some(serde_json::from_str(&stdout).unwrap())
}

/// Polls `check` every 250 ms until it gives a value or `limit` passes.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Installs the CRDs of `deploy/crds` (its kustomization, server-side apply) and waits
/// until they serve.
fn install_crds() {
    let dir = repo().join("deploy/crds");
    must_kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            dir.to_str().unwrap(),
        ],
        None,
    );
    for crd in ["datasets", "targetclusters", "dataproducts"] {
        must_kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{crd}.sluice.dev"),
            ],
            None,
        );
    }
}

/// A namespace for one test, removed when dropped.
struct Namespace(String);

impl Namespace {
    fn create(team: &str) -> Namespace {
        let name = unique("k8s-");
        must_kubectl(
            &["apply", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    sluice.dev/team: {team}\n"
            )),
        );
        Namespace(name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

fn product_yaml(namespace: &str, name: &str, dataset: &str, cluster: &str, table: &str) -> String {
    format!(
        r#"apiVersion: sluice.dev/v1alpha1
kind: DataProduct
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    sluice.dev/test: {namespace}
  annotations:
    sluice.dev/description: Orders that are not cancelled, applied with kubectl
spec:
  sources:
    - {{name: o, dataset: {dataset}}}
  filter: 'o.status != "CANCELLED"'
  key: o.id
  fields:
    order_id: o.id
    amount: o.amount
    status: o.status
  target:
    cluster: {cluster}
    name: {table}
"#
    )
}

#[test]
fn the_api_server_enforces_the_crd_schemas() {
    install_crds();
    let namespace = Namespace::create("team-crd");
    let ns = namespace.0.as_str();
    let valid = product_yaml(ns, "valid", "shop.orders", "shared-pg", "valid_orders");
    must_kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&valid));
    // Each of these breaks the schema in one place; the API server names the field.
    let cases = [
        (
            "mode: sideways",
            valid.replace(
                "    name: valid_orders",
                "    name: valid_orders\n    mode: sideways",
            ),
            "spec.target.mode",
        ),
        (
            "no fields",
            valid.replace(
                "  fields:\n    order_id: o.id\n    amount: o.amount\n    status: o.status\n",
                "  fields: {}\n",
            ),
            "spec.fields",
        ),
        (
            "sources not a list",
            valid.replace(
                "  sources:\n    - {name: o, dataset: shop.orders}\n",
                "  sources: orders\n",
            ),
            "spec.sources",
        ),
        (
            "bad join type",
            valid.replace(
                "  filter:",
                "  joins:\n    - {type: outer, right: c, \"on\": \"o.id == c.id\"}\n  filter:",
            ),
            "spec.joins[0].type",
        ),
        (
            "unknown field",
            valid.replace("  key: o.id", "  key: o.id\n  colour: blue"),
            "colour",
        ),
        (
            "bad alias",
            valid.replace("{name: o,", "{name: \"O-1\","),
            "spec.sources[0].name",
        ),
    ];
    for (what, yaml, field) in cases {
        let (ok, stdout, stderr) = kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&yaml));
        assert!(!ok, "{what}: the API server accepted it:\n{stdout}");
        assert!(
            stderr.contains(field),
            "{what}: the refusal does not name {field}:\n{stderr}"
        );
    }
    // A dataset and a target cluster are cluster-scoped and validated the same way.
    let (ok, _, stderr) = kubectl(
        &["apply", "--dry-run=server", "-f", "-"],
        Some(
            "apiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {name: bad}\nspec: {type: mysql, url: x, isolation: schema}\n",
        ),
    );
    assert!(!ok && stderr.contains("spec.type"), "{stderr}");
    // The printer columns and short names are served.
    let out = must_kubectl(&["api-resources", "--api-group=sluice.dev"], None);
    for short in ["dp", "ds", "tc"] {
        assert!(out.split_whitespace().any(|w| w == short), "{out}");
    }
}

/// A Serve in Kubernetes mode, with the identity its Lease is held under.
fn kube_serve(label: &str, identity: &str, lease_namespace: &str) -> Serve {
    Serve::start(
        label,
        ADMIN_TOKEN,
        SECRET_KEY,
        &[
            ("SLUICE_KUBERNETES", "true"),
            // Tests run side by side: each server takes only its own test's objects.
            ("SLUICE_KUBERNETES_NAMESPACES", lease_namespace),
            (
                "SLUICE_KUBERNETES_SELECTOR",
                &format!("sluice.dev/test={lease_namespace}"),
            ),
            ("KUBECONFIG", &services().kubeconfig),
            ("POD_NAME", identity),
            ("POD_NAMESPACE", lease_namespace),
            ("SLUICE_WORKER_IMAGE", "registry.example/sluice:test"),
            ("SLUICE_JOBS", "in-process"),
            ("SLUICE_CONTROLLER_RESYNC", "1s"),
            ("SLUICE_CONTROLLER_MAX_BACKOFF", "2s"),
            ("SLUICE_LOG", "info"),
        ],
    )
}

/// The product's status on its object.
fn object_status(ns: &str, name: &str) -> Value {
    get_json(&["dataproduct", name, "-n", ns])
        .map(|o| o["status"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_data_product_object_goes_live_keeps_its_workers_and_tears_down() {
    let demo = Demo::start("k8s", "kube-e2e", "sluice-a", 60, 10, 10);
    let (run, team, ns, serve) = demo.names();
    let cluster = format!("pg-{run}");
    let targets = serve.dir.join("targets.yaml");
    std::fs::write(
        &targets,
        format!(
            "apiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {{name: {cluster}}}\n\
             spec:\n  type: postgres\n  url: {}\n  isolation: schema\n  allowedTeams: [\"*\"]\n",
            services().postgres_url
        ),
    )
    .unwrap();
    serve.must(&["apply", "-f", targets.to_str().unwrap()]);

    // Applied with kubectl, the product waits for approval, visible in the API.
    let name = "paid-orders";
    let dataset = format!("{run}.shop.orders");
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&product_yaml(&ns, name, &dataset, &cluster, "k8s_orders")),
    );
    let status = wait_for(
        "PendingApproval on the object",
        Duration::from_secs(60),
        || {
            let s = object_status(&ns, name);
            (s["phase"] == "PendingApproval").then_some(s)
        },
    );
    let object = get_json(&["dataproduct", name, "-n", &ns]).unwrap();
    assert_eq!(
        status["observedGeneration"],
        object["metadata"]["generation"]
    );
    assert!(
        object["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "sluice.dev/teardown"),
        "{object}"
    );
    let shown = serve.must(&["get", "product", name, "--team", &team, "-o", "json"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["metadata"]["labels"]["sluice.dev/namespace"],
        ns.as_str(),
        "{shown}"
    );
    assert_eq!(
        shown["metadata"]["description"],
        "Orders that are not cancelled, applied with kubectl"
    );
    // The object is the one place the product changes.
    let (ok, _, stderr) = serve.sluice(&["delete", "product", name, "--team", &team]);
    assert!(!ok && stderr.contains("Kubernetes object"), "{stderr}");

    // Approved in the API, it is provisioned and goes Live; the object follows.
    serve.must(&["approve", &format!("{team}/{name}"), "-m", "from the test"]);
    let status = wait_for("Live on the object", Duration::from_secs(180), || {
        let s = object_status(&ns, name);
        (s["phase"] == "Live").then_some(s)
    });
    assert_eq!(status["progress"], "100%", "{status}");
    assert!(
        status["topic"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sluice.{team}.{name}.v")),
        "{status}"
    );
    let condition = |s: &Value, t: &str| {
        s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["status"].clone())
    };
    assert_eq!(
        condition(&status, "Accepted"),
        Some("True".into()),
        "{status}"
    );
    assert_eq!(condition(&status, "Ready"), Some("True".into()), "{status}");
    assert_eq!(
        status["approval"]["granted"][0]["comment"], "from the test",
        "{status}"
    );
    serve.must(&["verify", &format!("{team}/{name}")]);

    // The worker objects: owned by the product, with the right spec.
    let uid = object["metadata"]["uid"].as_str().unwrap().to_owned();
    let worker = format!("sluice-worker-{name}");
    let deployment = get_json(&["deployment", &worker, "-n", &ns]).expect("the worker Deployment");
    let owner = &deployment["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], uid.as_str());
    assert_eq!(owner["kind"], "DataProduct");
    assert_eq!(owner["controller"], true);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/sluice:test");
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args[..3],
        ["worker", "--product", &format!("{team}/{name}")]
    );
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        worker.as_str()
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert!(
        container["livenessProbe"]["httpGet"]["path"] == "/healthz",
        "{container}"
    );
    let secret = get_json(&["secret", &worker, "-n", &ns]).expect("the worker Secret");
    assert!(
        secret["data"]["SLUICE_DATABASE_URL"].is_string(),
        "{secret}"
    );
    assert!(
        secret["data"]["SLUICE_KAFKA_BOOTSTRAP"].is_string(),
        "{secret}"
    );
    let budget = get_json(&["pdb", &worker, "-n", &ns]).expect("the PodDisruptionBudget");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);

    // Drift: a hand edit is taken back, a deleted object comes back.
    must_kubectl(
        &["scale", "deployment", &worker, "-n", &ns, "--replicas=5"],
        None,
    );
    wait_for("the replicas taken back", Duration::from_secs(30), || {
        let d = get_json(&["deployment", &worker, "-n", &ns])?;
        (d["spec"]["replicas"] == 1).then_some(())
    });
    must_kubectl(&["delete", "secret", &worker, "-n", &ns], None);
    wait_for("the Secret made again", Duration::from_secs(30), || {
        get_json(&["secret", &worker, "-n", &ns])
    });

    // Events on the object tell its story.
    let events = must_kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ],
        None,
    );
    for reason in ["PendingApproval", "Live"] {
        assert!(
            events.contains(&format!("\"reason\": \"{reason}\"")),
            "no {reason} event:\n{events}"
        );
    }

    // Deleting the object tears the product down through the finalizer.
    delete_product_object(&ns, name);
    let (ok, _, stderr) = serve.sluice(&["get", "product", name, "--team", &team]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");
    assert!(get_json(&["deployment", &worker, "-n", &ns]).is_none());
    // Every step is in the audit log, by the object and by the approver.
    let audit = serve.must(&["audit", "export", "--team", &team, "--name", name]);
    let actor = format!("kubernetes:{ns}/{name} (requester@{team})");
    assert!(audit.contains(&actor), "{audit}");
    assert!(audit.contains("\"approve\""), "{audit}");
    serve.must(&["audit", "verify"]);
}

/// The replicas that recorded Events about object `name`, sorted, without repeats.
fn reporters(ns: &str, name: &str) -> Vec<String> {
    let events = must_kubectl(
        &[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ],
        None,
    );
    let events: Value = serde_json::from_str(&events).unwrap();
    let mut who: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reportingInstance"].as_str().map(str::to_owned))
        .collect();
    who.sort();
    who.dedup();
    who
}

#[test]
fn only_the_lease_holder_acts_and_killing_it_hands_over() {
    install_crds();
    let team = unique("team-lease");
    let namespace = Namespace::create(&team);
    let ns = namespace.0.clone();
    // Two replicas with stores of their own: which one took an object in shows who acted.
    let first = kube_serve("kube-lease-a", "replica-a", &ns);
    wait_for(
        "replica-a holding the Lease",
        Duration::from_secs(30),
        || {
            let lease = get_json(&["lease", "sluice-controller", "-n", &ns])?;
            (lease["spec"]["holderIdentity"] == "replica-a").then_some(())
        },
    );
    let second = kube_serve("kube-lease-b", "replica-b", &ns);
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&product_yaml(
            &ns,
            "first",
            "no.such.dataset",
            "no-such-cluster",
            "first",
        )),
    );
    // Refused by Sluice's own validation (the dataset is unknown), on the object's status.
    let status = wait_for("the first object taken in", Duration::from_secs(30), || {
        let s = object_status(&ns, "first");
        s["conditions"]
            .as_array()
            .filter(|c| !c.is_empty())
            .map(|_| s.clone())
    });
    let accepted = &status["conditions"][0];
    assert_eq!(accepted["type"], "Accepted", "{status}");
    assert_eq!(accepted["status"], "False", "{status}");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("/spec/sources/0/dataset"),
        "{status}"
    );
    // Everything recorded about it was recorded by the holder.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reporters(&ns, "first"), ["replica-a"]);

    // Killing the holder hands over within the Lease's term.
    let killed = Instant::now();
    drop(first);
    wait_for(
        "replica-b holding the Lease",
        Duration::from_secs(40),
        || {
            let lease = get_json(&["lease", "sluice-controller", "-n", &ns])?;
            (lease["spec"]["holderIdentity"] == "replica-b").then_some(())
        },
    );
    let handover = killed.elapsed();
    eprintln!("the Lease moved to replica-b {handover:?} after replica-a was killed");
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&product_yaml(
            &ns,
            "second",
            "no.such.dataset",
            "no-such-cluster",
            "second",
        )),
    );
    wait_for(
        "the second object taken in by replica-b",
        Duration::from_secs(30),
        || {
            let s = object_status(&ns, "second");
            s["conditions"]
                .as_array()
                .filter(|c| !c.is_empty())
                .map(|_| ())
        },
    );
    wait_for(
        "replica-b's event on the second object",
        Duration::from_secs(10),
        || (reporters(&ns, "second") == ["replica-b"]).then_some(()),
    );
    drop(second);
    for name in ["first", "second"] {
        let _ = kubectl(
            &[
                "patch",
                "dataproduct",
                name,
                "-n",
                &ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ],
            None,
        );
    }
}

/// What the tests that need data share: the CRDs installed, a namespace for a team of their
/// own, a Kubernetes-mode server taking in only their objects, and the demo's topics and
/// datasets under a unique prefix (deleted when dropped).
struct Demo {
    run: String,
    team: String,
    serve: Serve,
    namespace: Namespace,
    _topics: common::Topics,
}

impl Demo {
    /// The run's name, the team, the namespace and the server, as the tests use them.
    fn names(&self) -> (String, String, String, &Serve) {
        (
            self.run.clone(),
            self.team.clone(),
            self.namespace.0.clone(),
            &self.serve,
        )
    }

    fn start(
        prefix: &str,
        label: &str,
        identity: &str,
        orders: u32,
        customers: u32,
        days: u32,
    ) -> Demo {
        install_crds();
        let run = unique(prefix);
        let topics = common::Topics(run.clone());
        let team = format!("team-{run}");
        let namespace = Namespace::create(&team);
        let serve = kube_serve(label, identity, &namespace.0);
        serve.must(&[
            "demo",
            "--orders",
            &orders.to_string(),
            "--customers",
            &customers.to_string(),
            "--days",
            &days.to_string(),
            "--topic-prefix",
            &format!("{run}."),
        ]);
        Demo {
            run,
            team,
            serve,
            namespace,
            _topics: topics,
        }
    }
}

/// Deletes the DataProduct object `name` in `ns` and waits until it is gone (its finalizer
/// has torn the product down).
fn delete_product_object(ns: &str, name: &str) {
    must_kubectl(
        &["delete", "dataproduct", name, "-n", ns, "--wait=false"],
        None,
    );
    wait_for("the product object gone", Duration::from_secs(120), || {
        get_json(&["dataproduct", name, "-n", ns])
            .is_none()
            .then_some(())
    });
}

/// The status of a cluster-scoped object's `Ready` condition, once it has one.
fn ready_condition(kind: &str, name: &str) -> Option<Value> {
    let object = get_json(&[kind, name])?;
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
}

#[test]
fn datasets_and_target_clusters_from_objects_join_the_catalog() {
    let demo = Demo::start("k8sc", "kube-catalog", "sluice-c", 40, 8, 5);
    let (run, team, ns, serve) = demo.names();
    // The demo makes the topics; its orders dataset, registered through the API, lends its
    // spec to one applied as an object.
    let registered = serve.must(&[
        "get",
        "dataset",
        &format!("{run}.shop.orders"),
        "-o",
        "json",
    ]);
    let registered: Value = serde_json::from_str(&registered).unwrap();
    let dataset = format!("{run}.k8s.orders");
    let dataset_object = serde_json::json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {
            "name": dataset,
            "labels": {"sluice.dev/test": ns},
            "annotations": {"sluice.dev/owner": team, "sluice.dev/description": "orders, from an object"}
        },
        "spec": registered["spec"],
    });
    must_kubectl(&["apply", "-f", "-"], Some(&dataset_object.to_string()));

    // The target cluster's password comes from a Secret in Sluice's namespace.
    let url = &services().postgres_url;
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    must_kubectl(
        &[
            "create",
            "secret",
            "generic",
            "pg-admin",
            "-n",
            &ns,
            &format!("--from-literal=password={password}"),
        ],
        None,
    );
    let cluster = format!("pg-{run}");
    let cluster_object = |name: &str, secret: &str| {
        serde_json::json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "TargetCluster",
            "metadata": {"name": name, "labels": {"sluice.dev/test": ns}},
            "spec": {
                "type": "postgres",
                "url": format!("{scheme}://{user}@{host}"),
                "credentialsSecret": secret,
                "isolation": "schema",
                "allowedTeams": ["*"],
            },
        })
        .to_string()
    };
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&cluster_object(&cluster, "pg-admin")),
    );
    let missing = format!("pg-{run}-missing");
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&cluster_object(&missing, "no-such-secret")),
    );

    for (kind, name) in [("dataset", &dataset), ("targetcluster", &cluster)] {
        let ready = wait_for(
            &format!("{kind} {name} Ready"),
            Duration::from_secs(30),
            || ready_condition(kind, name),
        );
        assert_eq!(ready["status"], "True", "{kind} {name}: {ready}");
    }
    let refused = wait_for(
        "the cluster without its Secret refused",
        Duration::from_secs(30),
        || ready_condition("targetcluster", &missing),
    );
    assert_eq!(refused["status"], "False", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no Secret no-such-secret"),
        "{refused}"
    );

    // In the catalog, with the owner from the annotation and the password sealed.
    let shown: Value =
        serde_json::from_str(&serve.must(&["get", "dataset", &dataset, "-o", "json"])).unwrap();
    assert_eq!(shown["metadata"]["owner"], team.as_str(), "{shown}");
    let shown: Value =
        serde_json::from_str(&serve.must(&["get", "targetcluster", &cluster, "-o", "json"]))
            .unwrap();
    let shown_url = shown["spec"]["url"].as_str().unwrap();
    assert!(
        !shown_url.contains(password) && shown_url.contains("redacted"),
        "{shown}"
    );
    let (ok, _, stderr) = serve.sluice(&["delete", "dataset", &dataset]);
    assert!(!ok && stderr.contains("Kubernetes object"), "{stderr}");

    // A product over both goes Live: the password from the Secret works.
    let name = "from-objects";
    must_kubectl(
        &["apply", "-f", "-"],
        Some(&product_yaml(
            &ns,
            name,
            &dataset,
            &cluster,
            "objects_orders",
        )),
    );
    wait_for("PendingApproval", Duration::from_secs(60), || {
        (object_status(&ns, name)["phase"] == "PendingApproval").then_some(())
    });
    serve.must(&["approve", &format!("{team}/{name}"), "-m", "ok"]);
    wait_for("Live", Duration::from_secs(180), || {
        (object_status(&ns, name)["phase"] == "Live").then_some(())
    });
    serve.must(&["verify", &format!("{team}/{name}")]);

    // Deleting the objects takes the entries out of the catalog.
    delete_product_object(&ns, name);
    for (kind, name) in [
        ("targetcluster", &cluster),
        ("dataset", &dataset),
        ("targetcluster", &missing),
    ] {
        must_kubectl(&["delete", kind, name, "--wait=false"], None);
        wait_for(
            &format!("{kind} {name} gone"),
            Duration::from_secs(60),
            || get_json(&[kind, name]).is_none().then_some(()),
        );
        let (ok, _, stderr) = serve.sluice(&["get", kind, name]);
        assert!(
            !ok && stderr.contains("not found"),
            "{kind} {name}: {stderr}"
        );
    }
}

#[test]
fn a_dedicated_target_gets_a_store_of_its_own() {
    let demo = Demo::start("k8sd", "kube-dedicated", "sluice-d", 20, 5, 5);
    let (run, team, ns, serve) = demo.names();
    let name = "own-store";
    let yaml = product_yaml(&ns, name, &format!("{run}.shop.orders"), "unused", "orders").replace(
        "    cluster: unused\n",
        "    dedicated: {type: postgres, size: small}\n",
    );
    must_kubectl(&["apply", "-f", "-"], Some(&yaml));

    // The store's objects, owned by the product; it waits for them to be ready.
    let waiting = wait_for(
        "DedicatedStoreReady on the object",
        Duration::from_secs(60),
        || {
            let s = object_status(&ns, name);
            let c = s["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "DedicatedStoreReady")?
                .clone();
            (s["phase"] == "PendingApproval").then_some(c)
        },
    );
    assert_eq!(waiting["status"], "False", "{waiting}");
    assert_eq!(waiting["reason"], "WaitingForPods", "{waiting}");
    let store = format!("sluice-{name}-pg");
    let uid = get_json(&["dataproduct", name, "-n", &ns]).unwrap()["metadata"]["uid"].clone();
    let set = get_json(&["statefulset", &store, "-n", &ns]).expect("the StatefulSet");
    assert_eq!(set["metadata"]["ownerReferences"][0]["uid"], uid);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "postgres:16");
    let env = container["env"].as_array().unwrap();
    let password_env = env
        .iter()
        .find(|e| e["name"] == "POSTGRES_PASSWORD")
        .unwrap();
    assert_eq!(
        password_env["valueFrom"]["secretKeyRef"]["name"],
        store.as_str()
    );
    assert_eq!(
        set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    assert_eq!(
        set["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
    let service = get_json(&["service", &store, "-n", &ns]).expect("the Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 5432);
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(
            &set["spec"]["template"]["metadata"]["labels"][key], value,
            "{service}"
        );
    }
    let secret = get_json(&["secret", &store, "-n", &ns]).expect("the Secret");
    let password = secret["data"]["password"].as_str().unwrap().to_owned();

    // In the catalog: a cluster for this team alone, which the product is stored against.
    let cluster = format!("dedicated-{ns}-{name}-pg");
    let shown: Value =
        serde_json::from_str(&serve.must(&["get", "targetcluster", &cluster, "-o", "json"]))
            .unwrap();
    assert_eq!(
        shown["spec"]["allowedTeams"],
        serde_json::json!([team]),
        "{shown}"
    );
    let url = shown["spec"]["url"].as_str().unwrap();
    assert!(
        url.contains(&format!("@{store}.{ns}.svc:5432/")) && url.contains("redacted"),
        "{url}"
    );
    let product: Value =
        serde_json::from_str(&serve.must(&["get", "product", name, "--team", &team, "-o", "json"]))
            .unwrap();
    assert_eq!(
        product["spec"]["target"]["cluster"],
        cluster.as_str(),
        "{product}"
    );

    // There is no kubelet here: the test plays the StatefulSet controller and reports the
    // pod ready, as a real cluster would once PostgreSQL answers.
    must_kubectl(
        &[
            "patch",
            "statefulset",
            &store,
            "-n",
            &ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"replicas":1,"readyReplicas":1,"availableReplicas":1,"currentReplicas":1}}"#,
        ],
        None,
    );
    wait_for("DedicatedStoreReady True", Duration::from_secs(60), || {
        let s = object_status(&ns, name);
        let c = s["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "DedicatedStoreReady")?
            .clone();
        (c["status"] == "True").then_some(())
    });
    // The password is made once and kept.
    let secret = get_json(&["secret", &store, "-n", &ns]).unwrap();
    assert_eq!(secret["data"]["password"], password.as_str());

    // Deleting the product takes the store and its catalog entry with it.
    delete_product_object(&ns, name);
    for kind in ["statefulset", "service", "secret"] {
        assert!(
            get_json(&[kind, &store, "-n", &ns]).is_none(),
            "{kind} {store} is left"
        );
    }
    let (ok, _, stderr) = serve.sluice(&["get", "targetcluster", &cluster]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");
}

#[test]
fn kubernetes_mode_without_a_cluster_fails_the_start_with_the_reason() {
    let dir = std::env::temp_dir().join(unique("sluice-nokube-"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--kubernetes", "--listen", "127.0.0.1:0"])
        .env("SLUICE_DATA_DIR", &dir)
        .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
        .env("HOME", &dir)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("SLUICE_KAFKA_BOOTSTRAP")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !out.status.success(),
        "it started without a cluster: {stderr}"
    );
    assert!(
        stderr.contains("SLUICE_KUBERNETES is set but cannot reach Kubernetes"),
        "{stderr}"
    );
}
