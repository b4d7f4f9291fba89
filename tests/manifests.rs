//! deploy/ and the Dockerfiles: every manifest parses, and every healthcheck command line in them is accepted by the binary (`--dry-run`).

use std::fs;
use std::path::{Path, PathBuf};

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

use support::dockerfile::ImageConfig;

/// Where the image puts the binary (and where `COPY --from` takes it from).
const IMAGE_BINARY: &str = "/app/healthcheck";

/// A healthcheck command line (program first) and where it was found.
#[derive(Debug)]
struct CommandLine {
    origin: String,
    argv: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn image() -> ImageConfig {
    support::dockerfile::read(&repo().join("Dockerfile"))
}

/// The files under deploy/ whose name ends with one of `suffixes`, sorted.
fn deploy_files(suffixes: &[&str]) -> Vec<PathBuf> {
    let dir = repo().join("deploy");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
        .map(|entry| entry.expect("read deploy/").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            suffixes.iter().any(|suffix| name.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

fn yaml_files() -> Vec<PathBuf> {
    deploy_files(&[".yaml", ".yml"])
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo()).unwrap_or(path).display().to_string()
}

fn load_yaml(path: &Path) -> Vec<Yaml> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", relative(path)))
}

/// `registry/name:tag@digest` names the healthcheck image when `name` is `healthcheck`.
fn is_healthcheck_image(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next() == Some("healthcheck")
}

/// The tag of an image reference, if it has one.
fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

fn runs_healthcheck(argv: &[String]) -> bool {
    argv.first().and_then(|program| Path::new(program).file_name()).is_some_and(|name| name == "healthcheck")
}

fn get<'a>(hash: &'a Hash, key: &str) -> Option<&'a Yaml> {
    hash.get(&Yaml::String(key.to_string()))
}

/// `hash[key]` as a list of strings. Only the list form is allowed: the image has no shell to
/// split a string with.
fn string_list(hash: &Hash, key: &str, origin: &str) -> Option<Vec<String>> {
    let items = match get(hash, key)? {
        Yaml::Array(items) => items,
        other => panic!("{origin}: {key} must be a list of strings, found {other:?}"),
    };
    let strings = items
        .iter()
        .map(|item| match item {
            Yaml::String(s) => s.clone(),
            // A YAML scalar like 8081 or 2 is a number, but Kubernetes wants strings here.
            other => panic!("{origin}: {key} has a non-string item {other:?}: quote it"),
        })
        .collect();
    Some(strings)
}

fn string_at<'a>(hash: &'a Hash, key: &str) -> Option<&'a str> {
    get(hash, key).and_then(Yaml::as_str)
}

/// What a container runs, given its overrides of the image's ENTRYPOINT and CMD, when that runs
/// healthcheck. Kubernetes and Compose agree: a new entrypoint drops the image's CMD. For any
/// other image only a given entrypoint is known.
fn effective_argv(
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    from_image: bool,
    image: &ImageConfig,
) -> Option<Vec<String>> {
    let argv = match entrypoint {
        Some(entrypoint) => [entrypoint, cmd.unwrap_or_default()].concat(),
        None if from_image => [image.entrypoint.clone(), cmd.unwrap_or_else(|| image.cmd.clone())].concat(),
        None => return None,
    };
    runs_healthcheck(&argv).then_some(argv)
}

/// Every healthcheck command line in a Kubernetes object: containers, init containers and exec
/// probes or hooks, wherever they are nested.
fn kubernetes_command_lines(node: &Yaml, image: &ImageConfig, origin: &str, out: &mut Vec<CommandLine>) {
    match node {
        Yaml::Hash(hash) => {
            if let (Some(name), Some(image_ref)) = (string_at(hash, "name"), string_at(hash, "image")) {
                let origin = format!("{origin}: container {name}");
                // Kubernetes: `command` replaces ENTRYPOINT, `args` replaces CMD.
                let command = string_list(hash, "command", &origin);
                let args = string_list(hash, "args", &origin);
                let from_image = is_healthcheck_image(image_ref);
                if let Some(argv) = effective_argv(command, args, from_image, image) {
                    if from_image {
                        assert_eq!(argv[0], IMAGE_BINARY, "{origin}: the image holds only {IMAGE_BINARY}");
                    }
                    out.push(CommandLine { origin, argv });
                }
            }
            if let Some(Yaml::Hash(exec)) = get(hash, "exec") {
                if let Some(argv) = string_list(exec, "command", origin).filter(|argv| runs_healthcheck(argv)) {
                    out.push(CommandLine { origin: format!("{origin}: exec"), argv });
                }
            }
            for (key, value) in hash {
                if key.as_str() != Some("exec") {
                    kubernetes_command_lines(value, image, origin, out);
                }
            }
        }
        Yaml::Array(items) => {
            for item in items {
                kubernetes_command_lines(item, image, origin, out);
            }
        }
        _ => {}
    }
}

/// Every healthcheck command line in a Compose file: service commands and health checks.
fn compose_command_lines(services: &Hash, image: &ImageConfig, origin: &str, out: &mut Vec<CommandLine>) {
    for (name, service) in services {
        let name = name.as_str().expect("service name");
        let Yaml::Hash(service) = service else {
            panic!("{origin}: service {name} is not a mapping");
        };
        let origin = format!("{origin}: service {name}");
        let from_image = string_at(service, "image").is_some_and(is_healthcheck_image);
        // Compose: `entrypoint` replaces ENTRYPOINT, `command` replaces CMD.
        let entrypoint = string_list(service, "entrypoint", &origin);
        let command = string_list(service, "command", &origin);
        if let Some(argv) = effective_argv(entrypoint, command, from_image, image) {
            out.push(CommandLine { origin: origin.clone(), argv });
        }
        if let Some(Yaml::Hash(check)) = get(service, "healthcheck") {
            let test = string_list(check, "test", &origin).unwrap_or_default();
            match test.split_first() {
                Some((kind, argv)) if kind == "CMD" && runs_healthcheck(argv) => {
                    out.push(CommandLine { origin: format!("{origin}: healthcheck"), argv: argv.to_vec() });
                }
                // CMD-SHELL, or the string form: both run /bin/sh.
                Some((kind, _)) if kind != "CMD" && from_image => {
                    panic!("{origin}: healthcheck test {kind} needs a shell, and the image has none")
                }
                _ => {}
            }
        }
    }
}

/// Every healthcheck command line in every file that ships with the project.
fn all_command_lines() -> Vec<CommandLine> {
    let image = image();
    let mut found = Vec::new();
    for path in yaml_files() {
        let origin = relative(&path);
        let before = found.len();
        for doc in load_yaml(&path) {
            match &doc {
                Yaml::Hash(top) => match get(top, "services") {
                    Some(Yaml::Hash(services)) => compose_command_lines(services, &image, &origin, &mut found),
                    _ => kubernetes_command_lines(&doc, &image, &origin, &mut found),
                },
                other => panic!("{origin}: a document that is not a mapping: {other:?}"),
            }
        }
        // Every manifest here exists to show healthcheck in use: finding none means this walk
        // missed it, and the test would prove nothing for that file. Monitoring objects
        // (PodMonitor) run nothing; `scrape_configs_match_the_sidecars` covers them.
        let monitoring_only = load_yaml(&path).iter().all(is_monitoring_object);
        assert!(found.len() > before || monitoring_only, "{origin}: no healthcheck command line found");
    }
    let mut dockerfiles = vec![repo().join("Dockerfile")];
    dockerfiles.extend(deploy_files(&["Dockerfile"]));
    for path in dockerfiles {
        let origin = relative(&path);
        let config = support::dockerfile::read(&path);
        for (what, argv) in [("CMD", config.default_argv()), ("HEALTHCHECK", config.healthcheck)] {
            if runs_healthcheck(&argv) {
                found.push(CommandLine { origin: format!("{origin}: {what}"), argv });
            }
        }
    }
    found
}

/// The same command line with `--dry-run`: right after the mode word, or, for the original
/// positional form `PORT TIMEOUT CHECK...`, as the `serve` command it stands for.
fn dry_run_args(argv: &[String]) -> Vec<String> {
    let args = &argv[1..];
    match args.first().map(String::as_str) {
        Some(mode @ ("serve" | "check" | "run")) => {
            let mut dry = vec![mode.to_string(), "--dry-run".to_string()];
            dry.extend_from_slice(&args[1..]);
            dry
        }
        _ => {
            let [port, timeout, checks @ ..] = args else {
                panic!("not a healthcheck command line: {argv:?}");
            };
            // The positional TIMEOUT may be a bare number of seconds.
            let timeout =
                if timeout.bytes().all(|b| b.is_ascii_digit()) { format!("{timeout}s") } else { timeout.clone() };
            let mut dry = vec!["serve", "--dry-run", "--port", port, "--timeout", &timeout]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            dry.extend_from_slice(checks);
            dry
        }
    }
}

#[test]
fn every_manifest_parses_as_yaml() {
    let files = yaml_files();
    assert!(files.len() >= 5, "expected the manifests under deploy/, found {files:?}");
    for path in files {
        let origin = relative(&path);
        let docs = load_yaml(&path);
        assert!(!docs.is_empty(), "{origin}: empty");
        for doc in docs {
            let Yaml::Hash(top) = &doc else {
                panic!("{origin}: a document that is not a mapping");
            };
            let kubernetes = string_at(top, "apiVersion").is_some() && string_at(top, "kind").is_some();
            let compose = matches!(get(top, "services"), Some(Yaml::Hash(_)));
            assert!(kubernetes || compose, "{origin}: neither a Kubernetes object nor a Compose file");
        }
    }
}

#[test]
fn every_healthcheck_command_line_is_accepted_by_the_binary() {
    let found = all_command_lines();
    let mut failures = Vec::new();
    for line in &found {
        let dry = dry_run_args(&line.argv);
        let args: Vec<&str> = dry.iter().map(String::as_str).collect();
        let out = support::run_cli(&args);
        let mode = args[0];
        println!("{}\n  $ healthcheck {}\n{}", line.origin, args.join(" "), out.stdout);
        if out.code() != Some(0) || !out.stdout.contains(mode) {
            failures.push(format!(
                "{}: `healthcheck {}` exited {:?}\nstdout: {}\nstderr: {}",
                line.origin,
                args.join(" "),
                out.code(),
                out.stdout,
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The image's own default command and health check are among them.
    for what in ["Dockerfile: CMD", "Dockerfile: HEALTHCHECK"] {
        assert!(found.iter().any(|line| line.origin == what), "{what} not checked");
    }
}

/// `--dry-run` must parse for real, not accept anything: the checks above would prove nothing.
#[test]
fn dry_run_still_rejects_bad_command_lines() {
    let cases: &[&[&str]] = &[
        &["serve", "--dry-run", "--port", "0", "http://localhost:8080/health"],
        &["serve", "--dry-run", "--timeout", "abc", "http://localhost:8080/health"],
        &["check", "--dry-run", "ftp://localhost:8443/health"],
        &["check", "--dry-run", "tcp://localhost"],
        &["run", "--dry-run", "--istio"],
        &["run", "--dry-run", "--on-exit-when", "sometimes", "--", "/bin/true"],
    ];
    for args in cases {
        let out = support::run_cli(args);
        assert_eq!(out.code(), Some(64), "healthcheck {}\nstderr: {}", args.join(" "), out.stderr);
    }
}

/// One image name and version everywhere: the manifests, `COPY --from` and the crate agree.
#[test]
fn manifests_use_the_crate_version_of_the_image() {
    let version = env!("CARGO_PKG_VERSION");
    let mut images = Vec::new();
    for path in yaml_files() {
        let text = fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
            if let Some((_, image)) = line.split_once("image:") {
                let image = image.trim().trim_matches('"');
                if is_healthcheck_image(image) {
                    images.push((relative(&path), image.to_string()));
                }
            }
        }
    }
    for path in deploy_files(&["Dockerfile"]) {
        let text = fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|line| line.starts_with("COPY --from=")) {
            let mut words = line.split_whitespace().skip(1);
            let from = words.next().unwrap().trim_start_matches("--from=");
            if is_healthcheck_image(from) {
                assert_eq!(words.next(), Some(IMAGE_BINARY), "{}: {line}", relative(&path));
                images.push((relative(&path), from.to_string()));
            }
        }
    }
    assert!(!images.is_empty());
    for (origin, image) in images {
        assert_eq!(image_tag(&image), Some(version), "{origin}: {image}");
    }
    let dockerfile = fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(&format!("ARG VERSION={version}")), "Dockerfile: ARG VERSION is not {version}");
}

/// Pod spec fields that the "restricted" (and so "baseline") Pod Security Standard forbids.
const HOST_NAMESPACES: [&str; 3] = ["hostNetwork", "hostPID", "hostIPC"];
/// The volume types the "restricted" standard allows.
const RESTRICTED_VOLUMES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// A container's setting: its own securityContext first, then the pod's (where Kubernetes
/// inherits it).
fn security_setting<'a>(container: &'a Hash, pod: &'a Hash, key: &str, pod_level: bool) -> Option<&'a Yaml> {
    let from = |hash: &'a Hash| match get(hash, "securityContext") {
        Some(Yaml::Hash(sc)) => get(sc, key),
        _ => None,
    };
    from(container).or_else(|| if pod_level { from(pod) } else { None })
}

/// Everything the "restricted" Pod Security Standard asks of one container (and of its pod),
/// plus a read-only root filesystem; each violation as a sentence.
fn restricted_violations(container: &Hash, pod: &Hash) -> Vec<String> {
    let mut out = Vec::new();
    let setting = |key: &str, pod_level: bool| security_setting(container, pod, key, pod_level);
    if setting("allowPrivilegeEscalation", false) != Some(&Yaml::Boolean(false)) {
        out.push("securityContext.allowPrivilegeEscalation must be false".to_string());
    }
    if setting("privileged", false) == Some(&Yaml::Boolean(true)) {
        out.push("securityContext.privileged must not be true".to_string());
    }
    if setting("readOnlyRootFilesystem", false) != Some(&Yaml::Boolean(true)) {
        out.push("securityContext.readOnlyRootFilesystem must be true".to_string());
    }
    if setting("runAsNonRoot", true) != Some(&Yaml::Boolean(true)) {
        out.push("securityContext.runAsNonRoot must be true".to_string());
    }
    if matches!(setting("runAsUser", true), Some(Yaml::Integer(0))) {
        out.push("securityContext.runAsUser must not be 0".to_string());
    }
    let seccomp = match setting("seccompProfile", true) {
        Some(Yaml::Hash(profile)) => string_at(profile, "type"),
        _ => None,
    };
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        out.push("securityContext.seccompProfile.type must be RuntimeDefault or Localhost".to_string());
    }
    let capabilities = match setting("capabilities", false) {
        Some(Yaml::Hash(caps)) => Some(caps),
        _ => None,
    };
    let list = |key: &str| -> Vec<String> {
        match capabilities.and_then(|caps| get(caps, key)) {
            Some(Yaml::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    if !list("drop").iter().any(|c| c == "ALL") {
        out.push("securityContext.capabilities.drop must include ALL".to_string());
    }
    if list("add").iter().any(|c| c != "NET_BIND_SERVICE") {
        out.push("securityContext.capabilities.add may hold NET_BIND_SERVICE only".to_string());
    }
    for key in HOST_NAMESPACES {
        if get(pod, key) == Some(&Yaml::Boolean(true)) {
            out.push(format!("the pod's {key} must not be true"));
        }
    }
    if let Some(Yaml::Array(volumes)) = get(pod, "volumes") {
        for volume in volumes.iter().filter_map(Yaml::as_hash) {
            let kind = volume.keys().filter_map(Yaml::as_str).find(|k| *k != "name").unwrap_or("?");
            if !RESTRICTED_VOLUMES.contains(&kind) {
                out.push(format!("the pod's volume type {kind} is not allowed"));
            }
        }
    }
    out
}

/// Every pod spec (a mapping with `containers`) in a Kubernetes object, wherever it is nested.
fn pod_specs<'a>(node: &'a Yaml, out: &mut Vec<&'a Hash>) {
    match node {
        Yaml::Hash(hash) => {
            if matches!(get(hash, "containers"), Some(Yaml::Array(_))) {
                out.push(hash);
            }
            for value in hash.values() {
                pod_specs(value, out);
            }
        }
        Yaml::Array(items) => items.iter().for_each(|item| pod_specs(item, out)),
        _ => {}
    }
}

/// Every container in deploy/ that runs the healthcheck binary meets the "restricted" Pod
/// Security Standard (Kubernetes) or its Compose equivalent, so the examples can be deployed
/// as they are into a namespace that enforces it.
#[test]
fn every_container_running_healthcheck_is_restricted() {
    let image = image();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for path in yaml_files() {
        let origin = relative(&path);
        for doc in load_yaml(&path) {
            let Yaml::Hash(top) = &doc else { continue };
            if let Some(Yaml::Hash(services)) = get(top, "services") {
                for (name, service) in services {
                    let Yaml::Hash(service) = service else { continue };
                    let from_image = string_at(service, "image").is_some_and(is_healthcheck_image);
                    let entrypoint = string_list(service, "entrypoint", &origin);
                    let command = string_list(service, "command", &origin);
                    if effective_argv(entrypoint, command, from_image, &image).is_none() {
                        continue;
                    }
                    let origin = format!("{origin}: service {}", name.as_str().unwrap_or("?"));
                    let opts = string_list(service, "security_opt", &origin).unwrap_or_default();
                    let caps = string_list(service, "cap_drop", &origin).unwrap_or_default();
                    if get(service, "read_only") != Some(&Yaml::Boolean(true))
                        || !caps.iter().any(|c| c == "ALL")
                        || !opts.iter().any(|o| o == "no-new-privileges:true")
                        || get(service, "privileged") == Some(&Yaml::Boolean(true))
                        || string_at(service, "user").is_some_and(|u| u == "0" || u.starts_with("root"))
                    {
                        failures.push(format!(
                            "{origin}: needs read_only, cap_drop [ALL], no-new-privileges:true, a non-root user"
                        ));
                    }
                    checked.push(origin);
                }
                continue;
            }
            let mut pods = Vec::new();
            pod_specs(&doc, &mut pods);
            for pod in pods {
                for list in ["initContainers", "containers", "ephemeralContainers"] {
                    let Some(Yaml::Array(containers)) = get(pod, list) else { continue };
                    for container in containers.iter().filter_map(Yaml::as_hash) {
                        let name = string_at(container, "name").unwrap_or("?");
                        let origin = format!("{origin}: {list} {name}");
                        let from_image = string_at(container, "image").is_some_and(is_healthcheck_image);
                        let command = string_list(container, "command", &origin);
                        let args = string_list(container, "args", &origin);
                        if effective_argv(command, args, from_image, &image).is_none() && !from_image {
                            continue;
                        }
                        for violation in restricted_violations(container, pod) {
                            failures.push(format!("{origin}: {violation}"));
                        }
                        checked.push(origin);
                    }
                }
            }
        }
    }
    println!("checked: {checked:#?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every Kubernetes manifest runs the binary somewhere, and Compose does too.
    for file in ["01-", "02-", "03-", "04-", "compose.yaml"] {
        assert!(checked.iter().any(|origin| origin.contains(file)), "no container checked in deploy/{file}*");
    }
}

/// The check above must catch what it looks for: each weakening of a hardened container fails.
#[test]
fn the_restricted_check_catches_each_weakening() {
    let hardened = "
containers:
  - name: c
    securityContext:
      runAsNonRoot: true
      runAsUser: 65532
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: { drop: [ALL] }
      seccompProfile: { type: RuntimeDefault }
";
    let violations = |text: &str| {
        let doc = YamlLoader::load_from_str(text).unwrap().remove(0);
        let pod = doc.as_hash().unwrap().clone();
        let container = get(&pod, "containers").unwrap()[0].as_hash().unwrap().clone();
        restricted_violations(&container, &pod)
    };
    assert_eq!(violations(hardened), Vec::<String>::new());
    let weakenings = [
        ("runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"),
        ("runAsUser: 65532", "runAsUser: 0", "runAsUser"),
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
        ("{ drop: [ALL] }", "{ drop: [NET_RAW] }", "drop"),
        ("{ drop: [ALL] }", "{ drop: [ALL], add: [NET_ADMIN] }", "add"),
        ("{ type: RuntimeDefault }", "{ type: Unconfined }", "seccompProfile"),
        ("      seccompProfile: { type: RuntimeDefault }\n", "", "seccompProfile"),
        ("containers:", "hostNetwork: true\ncontainers:", "hostNetwork"),
        ("containers:", "volumes: [{ name: h, hostPath: { path: / } }]\ncontainers:", "hostPath"),
    ];
    for (from, to, named) in weakenings {
        let text = hardened.replace(from, to);
        let found = violations(&text);
        assert!(found.iter().any(|v| v.contains(named)), "{to:?}: {found:?}");
    }
    // Pod-level runAsNonRoot and seccompProfile count for the container.
    let pod_level = hardened
        .replace("      runAsNonRoot: true\n", "")
        .replace("      seccompProfile: { type: RuntimeDefault }\n", "")
        + "securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }\n";
    assert_eq!(violations(&pod_level), Vec::<String>::new());
}

#[test]
fn dry_run_args_put_the_flag_after_the_mode() {
    let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        dry_run_args(&argv(&["/app/healthcheck", "run", "--istio", "--", "/app/job"])),
        argv(&["run", "--dry-run", "--istio", "--", "/app/job"])
    );
    assert_eq!(
        dry_run_args(&argv(&["/app/healthcheck", "8081", "2", "http://localhost:8080/"])),
        argv(&["serve", "--dry-run", "--port", "8081", "--timeout", "2s", "http://localhost:8080/"])
    );
}

/// A Prometheus Operator object (PodMonitor, ServiceMonitor, ...).
fn is_monitoring_object(doc: &Yaml) -> bool {
    let Yaml::Hash(top) = doc else { return false };
    string_at(top, "apiVersion").is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
}

/// `hash[a][b]...`, through mappings.
fn path<'a>(node: &'a Yaml, keys: &[&str]) -> Option<&'a Yaml> {
    keys.iter().try_fold(node, |node, key| match node {
        Yaml::Hash(hash) => get(hash, key),
        _ => None,
    })
}

/// The port a `serve` command line listens on, as its `--dry-run` says.
fn serve_port(argv: &[String]) -> Option<u16> {
    let dry = dry_run_args(argv);
    if dry[0] != "serve" {
        return None;
    }
    let args: Vec<&str> = dry.iter().map(String::as_str).collect();
    let out = support::run_cli(&args);
    let listen = out.stdout.lines().find_map(|l| l.strip_prefix("listen "))?;
    listen.rsplit_once(':')?.1.parse().ok()
}

/// A pod template that runs `healthcheck serve`: its labels, its annotations and the names
/// of the container ports that `serve` listens on.
struct SidecarPod {
    origin: String,
    labels: Hash,
    annotations: Hash,
    port: u16,
    port_names: Vec<String>,
}

fn sidecar_pods() -> Vec<SidecarPod> {
    let image = image();
    let mut pods = Vec::new();
    for file in yaml_files() {
        for doc in load_yaml(&file) {
            let Some(template) = path(&doc, &["spec", "template"]) else { continue };
            let origin = relative(&file);
            let mut lines = Vec::new();
            kubernetes_command_lines(template, &image, &origin, &mut lines);
            let Some(port) = lines.iter().find_map(|l| serve_port(&l.argv)) else { continue };
            let hash_at = |keys: &[&str]| match path(template, keys) {
                Some(Yaml::Hash(h)) => h.clone(),
                _ => Hash::new(),
            };
            let mut port_names = Vec::new();
            for list in ["containers", "initContainers"] {
                let Some(Yaml::Array(containers)) = path(template, &["spec", list]) else { continue };
                for ports in containers.iter().filter_map(|c| path(c, &["ports"])).filter_map(Yaml::as_vec) {
                    for p in ports {
                        if path(p, &["containerPort"]).and_then(Yaml::as_i64) == Some(i64::from(port)) {
                            port_names.extend(path(p, &["name"]).and_then(Yaml::as_str).map(String::from));
                        }
                    }
                }
            }
            pods.push(SidecarPod {
                origin,
                labels: hash_at(&["metadata", "labels"]),
                annotations: hash_at(&["metadata", "annotations"]),
                port,
                port_names,
            });
        }
    }
    pods
}

/// Every pod that runs the daemon asks Prometheus to scrape its `/metrics` on the port it
/// really listens on, and every PodMonitor selects such pods by their labels and names
/// that port.
#[test]
fn scrape_configs_match_the_sidecars() {
    let pods = sidecar_pods();
    assert!(pods.len() >= 2, "the sidecar examples were not found");
    for pod in &pods {
        let annotation = |key: &str| string_at(&pod.annotations, key).map(String::from);
        assert_eq!(annotation("prometheus.io/scrape").as_deref(), Some("true"), "{}", pod.origin);
        assert_eq!(annotation("prometheus.io/port"), Some(pod.port.to_string()), "{}", pod.origin);
        assert_eq!(annotation("prometheus.io/path").as_deref(), Some("/metrics"), "{}", pod.origin);
    }
    let mut monitors = 0;
    for file in yaml_files() {
        for doc in load_yaml(&file).iter().filter(|d| is_monitoring_object(d)) {
            let origin = relative(&file);
            let Yaml::Hash(top) = doc else { unreachable!() };
            assert_eq!(string_at(top, "kind"), Some("PodMonitor"), "{origin}");
            let Some(Yaml::Hash(selector)) = path(doc, &["spec", "selector", "matchLabels"]) else {
                panic!("{origin}: no spec.selector.matchLabels");
            };
            let selected: Vec<&SidecarPod> =
                pods.iter().filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))).collect();
            assert!(!selected.is_empty(), "{origin}: selects none of the sidecar pods");
            let Some(Yaml::Array(endpoints)) = path(doc, &["spec", "podMetricsEndpoints"]) else {
                panic!("{origin}: no podMetricsEndpoints");
            };
            for endpoint in endpoints {
                assert_eq!(path(endpoint, &["path"]).and_then(Yaml::as_str), Some("/metrics"), "{origin}");
                let port = path(endpoint, &["port"]).and_then(Yaml::as_str).expect("a named port");
                for pod in &selected {
                    assert!(pod.port_names.iter().any(|n| n == port), "{origin}: {} has no port {port}", pod.origin);
                }
            }
            monitors += 1;
        }
    }
    assert!(monitors >= 1, "no PodMonitor example under deploy/");
}
