//! kubectl's typed `create` generators send protobuf bodies; the hub stores what a JSON client
//! would have sent.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::{HubProcess, kubectl_binaries, kubectl_with, stderr, stdout};

fn run(hub: &HubProcess, bin: &std::path::Path, args: &[&str]) -> String {
    let o = kubectl_with(bin, &hub.kubeconfig, args, None);
    assert!(
        o.status.success(),
        "{} {:?} failed: {}",
        bin.display(),
        args,
        stderr(&o)
    );
    stdout(&o)
}

fn get(hub: &HubProcess, bin: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-o", "json"]);
    serde_json::from_str(&run(hub, bin, &all)).unwrap()
}

#[test]
fn kubectl_create_generators_send_protobuf_that_the_hub_stores_as_json() {
    let hub = HubProcess::start();
    for (i, bin) in kubectl_binaries().iter().enumerate() {
        let ns = format!("pb{i}");
        let n = ns.as_str();
        // A protobuf body is what makes these work at all: check one really is sent.
        let verbose = kubectl_with(bin, &hub.kubeconfig, &["create", "ns", n, "-v=8"], None);
        assert!(verbose.status.success(), "{}", stderr(&verbose));
        assert!(
            stderr(&verbose).contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{} did not send protobuf",
            bin.display()
        );
        let commands: &[&[&str]] = &[
            &[
                "create",
                "cm",
                "cm",
                "--from-literal=a=1",
                "--from-literal=b=two",
            ],
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=password=p@ss w0rd\u{e9}",
            ],
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx",
                "--replicas=2",
                "--port=80",
            ],
            &[
                "create",
                "deployment",
                "zero",
                "--image=nginx",
                "--replicas=0",
            ],
            &["create", "sa", "robot"],
            &["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
            &[
                "create",
                "cronjob",
                "cj",
                "--image=busybox",
                "--schedule=*/5 * * * *",
            ],
            &[
                "create",
                "service",
                "clusterip",
                "s",
                "--tcp=80:8080",
                "--tcp=443:https",
            ],
            &["create", "role", "r", "--verb=get,list", "--resource=pods"],
            &[
                "create",
                "rolebinding",
                "rb",
                "--role=r",
                &format!("--serviceaccount={n}:robot"),
            ],
            &[
                "create",
                "pdb",
                "pdb",
                "--selector=app=web",
                "--min-available=50%",
            ],
            &["create", "ingress", "ing", "--rule=foo.com/bar=s:80"],
        ];
        for c in commands {
            // The namespace goes first: `create job` takes everything after `--` as the command.
            let mut args = vec!["-n", n];
            args.extend(c.iter().copied());
            run(&hub, bin, &args);
        }
        let cluster_role = format!("cr-{n}");
        run(
            &hub,
            bin,
            &[
                "create",
                "clusterrole",
                &cluster_role,
                "--verb=get",
                "--resource=configmaps",
            ],
        );
        run(
            &hub,
            bin,
            &[
                "create",
                "clusterrolebinding",
                &cluster_role,
                &format!("--clusterrole={cluster_role}"),
                "--user=alice",
            ],
        );

        let cm = get(&hub, bin, &["cm", "cm", "-n", n]);
        assert_eq!(cm["data"], json!({"a": "1", "b": "two"}));
        assert_eq!(cm["metadata"]["namespace"], n);

        let secret = get(&hub, bin, &["secret", "s", "-n", n]);
        let password = base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["password"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(password).unwrap(), "p@ss w0rd\u{e9}");

        let web = get(&hub, bin, &["deployment", "web", "-n", n]);
        assert_eq!(web["spec"]["replicas"], 2);
        assert_eq!(
            web["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        let container = &web["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx");
        // kube-apiserver's defaults are applied (the protocol of a port).
        assert_eq!(
            container["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        // Go's zero values of omitempty fields are not stored as "" or 0.
        assert!(web["metadata"].get("generateName").is_none(), "{web}");
        assert!(container.get("workingDir").is_none(), "{container}");
        // An explicit zero through a pointer field survives.
        let zero = get(&hub, bin, &["deployment", "zero", "-n", n]);
        assert_eq!(zero["spec"]["replicas"], 0);

        let job = get(&hub, bin, &["job", "j", "-n", n]);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["command"], json!(["echo", "hi"]));
        assert_eq!(pod["restartPolicy"], "Never");
        let cj = get(&hub, bin, &["cronjob", "cj", "-n", n]);
        assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");

        let svc = get(&hub, bin, &["service", "s", "-n", n]);
        let ports = &svc["spec"]["ports"];
        assert_eq!(ports[0]["port"], 80);
        assert_eq!(ports[0]["targetPort"], 8080);
        assert_eq!(ports[1]["targetPort"], "https");
        assert_eq!(svc["spec"]["type"], "ClusterIP");

        let role = get(&hub, bin, &["role", "r", "-n", n]);
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
        );
        let rb = get(&hub, bin, &["rolebinding", "rb", "-n", n]);
        assert_eq!(
            rb["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"})
        );
        assert_eq!(
            rb["subjects"],
            json!([{"kind": "ServiceAccount", "name": "robot", "namespace": n}])
        );
        let crb = get(&hub, bin, &["clusterrolebinding", &cluster_role]);
        assert_eq!(crb["subjects"][0]["name"], "alice");

        let pdb = get(&hub, bin, &["pdb", "pdb", "-n", n]);
        assert_eq!(pdb["spec"]["minAvailable"], "50%");
        let ing = get(&hub, bin, &["ingress", "ing", "-n", n]);
        assert_eq!(
            ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
            json!({"name": "s", "port": {"number": 80}})
        );
        get(&hub, bin, &["sa", "robot", "-n", n]);
    }
}
