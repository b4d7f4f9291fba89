//! What the scratch image ships, proved without Docker: the static musl binary alone in an empty root, run with chroot as uid 65532 and PID 1.
//!
//! The binary is the one `HEALTHCHECK_STATIC_BIN` names: .ci/run points it at the output of
//! `scripts/build-static`, the command the Dockerfile builds with. Without it, the tests build
//! a plain static binary on the current toolchain (`cargo build --release --target ...`, same
//! linker), which differs from the shipped one only in how a panic ends. Each test runs it under
//! `unshare --pid --fork --kill-child chroot --userspec=65532:65532 ROOT /app/healthcheck ...`
//! where ROOT holds nothing but `app/healthcheck`: no /etc (no passwd, hosts or resolv.conf),
//! no /tmp, no /dev, no /proc, no shell. That is stricter than a real container, which gets
//! /dev, /proc and /etc/hosts from the runtime. The tests need root (for chroot and namespaces)
//! and the musl target (or `HEALTHCHECK_STATIC_BIN`), and skip, saying why, only when root,
//! the util-linux tools or the target are missing.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use support::{binary, dockerfile, find_program, note, wait_child, Behaviour, Collected, Stub, LOCALHOST_V4};

/// The target the image's binary is built for on x86_64 hosts (the Dockerfile's amd64 case).
const TARGET: &str = binary::MUSL;
/// The distroless "nonroot" uid and gid the image runs as (`USER 65532:65532`).
const IMAGE_USER: &str = "65532:65532";
const IMAGE_UID: &str = "65532";
/// Where the image puts the binary.
const IMAGE_BINARY: &str = "/app/healthcheck";
/// How long a server in the root gets to start answering.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one-shot command in the root may take before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// DESIGN.md: SIGTERM ends `serve` within 100 ms. The bound here is looser, for a loaded CI
/// machine; the measured time is printed.
const SIGTERM_EXIT_BOUND: Duration = Duration::from_secs(2);

/// The tools that stand in for the container runtime, or why these tests cannot run here.
struct Tools {
    unshare: PathBuf,
    chroot: PathBuf,
    nsenter: PathBuf,
    ip: PathBuf,
}

fn tools() -> Result<Tools, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: chroot and PID namespaces need root".to_string());
    }
    let find =
        |name: &str| find_program(name).ok_or_else(|| format!("{name} not found (util-linux / coreutils / iproute2)"));
    Ok(Tools { unshare: find("unshare")?, chroot: find("chroot")?, nsenter: find("nsenter")?, ip: find("ip")? })
}

/// Why the static binary cannot be had here, if it cannot.
fn no_static_binary() -> Option<String> {
    let can_build = std::env::var_os("HEALTHCHECK_STATIC_BIN").is_some() || binary::target_installed(TARGET);
    (!can_build).then(|| {
        format!(
            "the {TARGET} target is not installed (rustup target add {TARGET}), and HEALTHCHECK_STATIC_BIN is not set"
        )
    })
}

/// Prints that `test` is skipped and why (not a missing-tool failure on CI: the musl target
/// may be out of reach even there, and .ci/run says so).
fn skip(test: &str, why: &str) {
    support::skip(&format!("image: {test}: {why}"));
}

/// The tools, or `None` after printing why the test is skipped.
fn tools_or_skip(test: &str) -> Option<Tools> {
    match tools().and_then(|tools| no_static_binary().map_or(Ok(tools), Err)) {
        Ok(tools) => Some(tools),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// The static binary, built once per test run (the first test to ask builds it).
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = match std::env::var_os("HEALTHCHECK_STATIC_BIN") {
            Some(path) => PathBuf::from(path),
            None => build_static_binary(),
        };
        assert!(path.is_file(), "no static binary at {path:?}");
        let size = fs::metadata(&path).unwrap().len();
        note(&format!(
            "static binary {} is {size} bytes ({:.0} KiB); the scratch image adds only its \
             config and one layer holding this file",
            path.display(),
            size as f64 / 1024.0
        ));
        path
    })
}

/// `cargo build --release --locked --target x86_64-unknown-linux-musl` with rust-lld, as the
/// Dockerfile does, into target/static so it does not contend with the test build's own lock.
fn build_static_binary() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = manifest_dir.join("target").join("static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let status = Command::new(cargo)
        .current_dir(manifest_dir)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
        .stdin(Stdio::null())
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "building the static binary failed ({status}); is the target installed? \
         rustup target add {TARGET}"
    );
    note(&format!("image: built the static binary in {:.0?}", started.elapsed()));
    target_dir.join(TARGET).join("release").join("healthcheck")
}

/// A directory holding nothing but `app/healthcheck`, removed when dropped.
struct Root {
    path: PathBuf,
}

impl Root {
    fn new() -> Root {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "image-root-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        let binary = path.join(IMAGE_BINARY.trim_start_matches('/'));
        fs::create_dir_all(binary.parent().unwrap()).expect("create the root");
        fs::copy(static_binary(), &binary).expect("copy the binary into the root");
        // Readable and executable by uid 65532, writable by nobody but root (as in the image).
        for path in [&path, binary.parent().unwrap(), &binary] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let root = Root { path: path.canonicalize().expect("canonicalize the root") };
        assert_eq!(root.files(), [IMAGE_BINARY], "the root must hold the binary alone");
        root
    }

    /// Every file under the root, as absolute paths inside it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(format!("/{}", path.strip_prefix(root).unwrap().display()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path, &self.path, &mut out);
        out
    }

    /// `chroot --userspec=65532:65532 ROOT /app/healthcheck ARGS...` as words, for a wrapper.
    fn chroot_words(&self, tools: &Tools, args: &[&str]) -> Vec<String> {
        let mut words = vec![
            tools.chroot.display().to_string(),
            format!("--userspec={IMAGE_USER}"),
            self.path.display().to_string(),
            IMAGE_BINARY.to_string(),
        ];
        words.extend(args.iter().map(|a| a.to_string()));
        words
    }

    /// The binary as the image runs it: PID 1 of a new PID namespace, in the empty root, as uid
    /// 65532, with an empty environment. The host network namespace is kept, so loopback
    /// upstreams in this test process are reachable.
    fn command(&self, tools: &Tools, args: &[&str]) -> Command {
        let mut cmd = Command::new(&tools.unshare);
        cmd.env_clear()
            // --kill-child covers a death of unshare before chroot drops root; after that
            // the guard (`Running::kill`) kills PID 1 itself.
            .args(["--pid", "--fork", "--kill-child", "--"])
            .args(self.chroot_words(tools, args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Like `command`, in a new network namespace too, with only its loopback up: for the
    /// image's default command, which listens on 0.0.0.0:8081 as it would in a container.
    fn command_in_own_network(&self, tools: &Tools, args: &[&str]) -> Command {
        let mut cmd = Command::new(&tools.unshare);
        // The shell and `ip` run before chroot, on the host's files; `exec` keeps PID 1.
        cmd.env_clear()
            .args(["--net", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c"])
            .arg(format!("{} link set lo up && exec \"$@\"", tools.ip.display()))
            .arg("sh")
            .args(self.chroot_words(tools, args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A running wrapper (unshare) and what it printed; killed, with its namespace, when dropped.
struct Running {
    child: Child,
    output: Option<(Collected, Collected)>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("spawn unshare");
        let stdout = Collected::start(child.stdout.take().unwrap());
        let stderr = Collected::start(child.stderr.take().unwrap());
        Running { child, output: Some((stdout, stderr)) }
    }

    /// Waits up to `timeout` for the exit; `None` if still running.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Kills it if still running, then returns (status, stdout, stderr). Once only.
    fn stop(&mut self) -> (ExitStatus, String, String) {
        if self.wait(Duration::ZERO).is_none() {
            self.kill();
        }
        let status = self.child.wait().expect("wait for unshare");
        let (stdout, stderr) = self.output.take().expect("stopped twice");
        (status, stdout.join(), stderr.join())
    }

    /// Kills the namespace's PID 1 (and so everything in the namespace), then unshare.
    /// `--kill-child` alone is not enough: the kernel forgets the parent-death signal when
    /// chroot --userspec changes the uid, so PID 1 would outlive unshare.
    fn kill(&mut self) {
        for pid in self.children() {
            // SAFETY: kill has no memory preconditions; pid is our own descendant.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
    }

    /// unshare's children, by host PID: the namespace's PID 1 once unshare has forked it.
    fn children(&self) -> Vec<i32> {
        let parent = self.child.id().to_string();
        let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
        entries
            .filter_map(|entry| {
                let pid = entry.ok()?.file_name().to_str()?.parse::<i32>().ok()?;
                let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                (status_field(&status, "PPid")? == parent).then_some(pid)
            })
            .collect()
    }

    /// The namespace's PID 1 (unshare's only child), by its host PID.
    fn pid1(&self) -> i32 {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(&pid) = self.children().first() {
                return pid;
            }
            assert!(Instant::now() < deadline, "unshare started no child");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

/// Runs a one-shot command in the root to its end, bounded by COMMAND_TIMEOUT.
fn run_to_end(cmd: Command) -> (ExitStatus, String, String) {
    let mut running = Running::spawn(cmd);
    let done = running.wait(COMMAND_TIMEOUT);
    let (status, stdout, stderr) = running.stop();
    assert!(done.is_some(), "still running after {COMMAND_TIMEOUT:?}; stderr: {stderr}");
    (status, stdout, stderr)
}

/// A field of /proc/PID/status, tabs and all (`Uid` -> "65532\t65532\t65532\t65532").
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// GET `path` on `addr`, retried until the server answers or STARTUP_TIMEOUT passes.
fn get_when_up(addr: SocketAddr, path: &str, server: &mut Running) -> support::Response {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match support::try_request(addr, "GET", path, Duration::from_secs(5)) {
            Ok(response) => return response,
            Err(e) => {
                if server.wait(Duration::ZERO).is_some() || Instant::now() >= deadline {
                    let (status, _, stderr) = server.stop();
                    panic!("no answer on {addr}{path} ({e}); the server exited {status}; stderr: {stderr}");
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> support::Response {
    support::try_request(addr, "GET", path, Duration::from_secs(5)).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Sends SIGTERM to the namespace's PID 1 from outside, as `docker stop` and kubelet do, and
/// checks that it exits 0 in time. PID 1 gets no default action for SIGTERM: without a handler
/// the signal is dropped and the process would run until SIGKILL.
fn assert_sigterm_exits_zero(mut server: Running, pid1: i32) {
    let sent = Instant::now();
    // SAFETY: kill has no memory preconditions; pid1 is our own descendant, still running.
    assert_eq!(unsafe { libc::kill(pid1, libc::SIGTERM) }, 0, "kill: {}", io::Error::last_os_error());
    let exited = server.wait(SIGTERM_EXIT_BOUND);
    let elapsed = sent.elapsed();
    let (status, _, stderr) = server.stop();
    assert!(exited.is_some(), "PID 1 still running {SIGTERM_EXIT_BOUND:?} after SIGTERM; stderr: {stderr}");
    note(&format!("image: SIGTERM to PID 1: exited {status} after {elapsed:.1?}"));
    // unshare --fork exits with its child's status.
    assert_eq!(status.code(), Some(0), "{status:?} (signal {:?}); stderr: {stderr}", status.signal());
    assert!(stderr.contains("event=shutdown"), "no shutdown log line; stderr: {stderr}");
}

/// The process is the namespace's PID 1, runs as 65532 without capabilities, in the root.
fn assert_runs_as_the_image_does(pid: i32, root: &Root) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let ids = format!("{IMAGE_UID}\t{IMAGE_UID}\t{IMAGE_UID}\t{IMAGE_UID}");
    assert_eq!(status_field(&status, "Name"), Some("healthcheck"), "{status}");
    assert_eq!(status_field(&status, "Uid"), Some(ids.as_str()), "{status}");
    assert_eq!(status_field(&status, "Gid"), Some(ids.as_str()), "{status}");
    assert_eq!(status_field(&status, "CapEff"), Some("0000000000000000"), "{status}");
    // NSpid lists the PID in each namespace, outermost first: PID 1 in its own.
    assert_eq!(status_field(&status, "NSpid"), Some(format!("{pid}\t1").as_str()), "{status}");
    let process_root = fs::read_link(format!("/proc/{pid}/root")).expect("read /proc/PID/root");
    assert_eq!(process_root, root.path, "not chrooted into the empty root");
}

#[test]
fn static_binary_needs_no_loader() {
    if let Some(why) = no_static_binary() {
        return skip("static_binary_needs_no_loader", &why);
    }
    let bytes = fs::read(static_binary()).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    // Position-independent (static-pie): the kernel loads it at a random address (ASLR). A
    // fixed-address executable is ET_EXEC (2). e_type is at 16 (ELF64 little-endian).
    const ET_DYN: u16 = 3;
    assert_eq!(
        u16::from_le_bytes([bytes[16], bytes[17]]),
        ET_DYN,
        "not position-independent: the binary would load at a fixed address"
    );
    assert!(binary::is_static(static_binary()).unwrap(), "the binary asks for a dynamic loader");
}

/// Every build command a Dockerfile's comment documents (run from the repository root) has
/// what the Dockerfile copies from the context: the ignore file that builder applies leaves
/// none of its COPY or ADD sources out. (A source that is the user's own, like the job's
/// program, need not exist here; it must only get through.)
fn assert_documented_builds_keep_their_sources(dockerfile: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(repo.join(dockerfile)).unwrap_or_else(|e| panic!("read {dockerfile}: {e}"));
    let builds = dockerfile::documented_builds(&text);
    assert!(!builds.is_empty(), "{dockerfile} documents no `docker build` command");
    let sources = dockerfile::context_sources(&text);
    for build in &builds {
        assert_eq!(build.file.as_deref().unwrap_or("Dockerfile"), dockerfile, "{build:?} builds another file");
        let Some(ignore_file) = dockerfile::ignore_file(build, repo) else { continue };
        let ignore = dockerfile::Ignore::read(&repo.join(&ignore_file));
        let context = Path::new(&build.context);
        for source in &sources {
            let in_context = context.join(source);
            let in_context = in_context.to_str().unwrap().trim_start_matches("./");
            assert!(
                !ignore.excludes(in_context),
                "`{} build` of {dockerfile} as documented: {} leaves out {source}, which the Dockerfile copies",
                build.tool,
                ignore_file.display()
            );
        }
    }
}

/// deploy/job-image.Dockerfile builds with the command its comment gives (issue 18): the
/// root .dockerignore is an allow-list for the healthcheck image and would leave the job's
/// program out.
#[test]
fn job_image_builds_as_its_comment_says() {
    assert_documented_builds_keep_their_sources("deploy/job-image.Dockerfile");
}

/// The same for the healthcheck image, and cargo can load the workspace from what
/// .dockerignore lets into the context (every member, every [[bench]] path) with the lock
/// file as it is (`--locked`, as scripts/build-static builds).
#[test]
fn dockerfile_context_holds_what_it_copies_and_what_cargo_reads() {
    assert_documented_builds_keep_their_sources("Dockerfile");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignore = dockerfile::Ignore::read(&repo.join(".dockerignore"));
    let context = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("docker-context-{}", std::process::id()));
    let _ = fs::remove_dir_all(&context);
    copy_context(repo, repo, &context, &ignore);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Its own target directory (kept between runs), so as not to wait on the test build's.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docker-context-target");
    let out = Command::new(cargo)
        .current_dir(&context)
        .args(["check", "--locked", "--offline", "--bin", "healthcheck"])
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    let _ = fs::remove_dir_all(&context);
    assert!(
        out.status.success(),
        "cargo cannot build from the Docker build context alone:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the files under `dir` that `ignore` lets into the context (target/ and .git are
/// skipped outright: large, and always left out).
fn copy_context(repo: &Path, dir: &Path, to: &Path, ignore: &dockerfile::Ignore) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path.strip_prefix(repo).unwrap();
        if relative == Path::new("target") || relative == Path::new(".git") {
            continue;
        }
        if path.is_dir() {
            copy_context(repo, &path, to, ignore);
        } else if !ignore.excludes(relative.to_str().unwrap()) {
            let dest = to.join(relative);
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(&path, &dest).unwrap_or_else(|e| panic!("copy {path:?}: {e}"));
        }
    }
}

/// Every image a Dockerfile pulls is named with its registry, so podman's short-name policy has
/// nothing to resolve (and no TTY to ask on): the first part of the name is a host (a `.` or a
/// `:` in it, or `localhost`). `scratch` is no image, and a stage is named by its `AS`. podman
/// keeps HEALTHCHECK only with `--format docker`, which the Dockerfile says.
#[test]
fn dockerfiles_name_their_images_fully() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![repo.join("Dockerfile")];
    for entry in fs::read_dir(repo.join("deploy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "Dockerfile") {
            files.push(path);
        }
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let mut stages = vec!["scratch".to_string()];
        let directive = text.lines().find_map(|l| l.strip_prefix("# syntax="));
        let from = text.lines().filter_map(|l| l.strip_prefix("FROM ")).map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            if let [_, as_, name] = words[..] {
                if as_.eq_ignore_ascii_case("AS") {
                    stages.push(name.to_string());
                }
            }
            words[0].to_string()
        });
        let images: Vec<String> = directive.map(str::to_string).into_iter().chain(from).collect();
        assert!(!images.is_empty(), "{file:?}: no FROM");
        for image in images {
            if stages.contains(&image) {
                continue;
            }
            let host = image.split_once('/').map(|(host, _)| host);
            assert!(
                host.is_some_and(|h| h.contains('.') || h.contains(':') || h == "localhost"),
                "{file:?}: `{image}` is a short name: podman's short-name policy may refuse it"
            );
        }
    }
    let dockerfile = fs::read_to_string(repo.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("podman build --format docker"),
        "the Dockerfile does not say how podman keeps HEALTHCHECK"
    );
}

/// The Dockerfile builds with `scripts/build-static`, on the toolchain the script pins, and the
/// build context lets the script in: a local build and the image's cannot drift apart.
#[test]
fn dockerfile_builds_with_the_script_and_its_toolchain() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| fs::read_to_string(repo.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
    let (dockerfile, script, ignore) = (read("Dockerfile"), read("scripts/build-static"), read(".dockerignore"));
    let pinned =
        script.lines().find_map(|line| line.strip_prefix("toolchain=")).expect("scripts/build-static: toolchain=");
    let base = dockerfile
        .lines()
        .find_map(|line| {
            line.strip_prefix("FROM ")?.split_whitespace().find_map(|word| word.strip_prefix("docker.io/library/rust:"))
        })
        .expect("Dockerfile: FROM docker.io/library/rust:");
    assert!(base.starts_with(&format!("{pinned}-")), "Dockerfile's rust:{base} is not the script's toolchain {pinned}");
    assert!(
        dockerfile.lines().any(|line| line.contains("$(scripts/build-static ")),
        "the Dockerfile does not build with scripts/build-static"
    );
    assert!(
        ignore.lines().any(|line| line == "!scripts/build-static"),
        ".dockerignore leaves scripts/build-static out"
    );
}

#[test]
fn serve_answers_from_an_empty_root_as_pid_1() {
    let Some(tools) = tools_or_skip("serve_answers_from_an_empty_root_as_pid_1") else {
        return;
    };
    let root = Root::new();
    let upstream = Stub::start(Behaviour::Status(200, "ok"));
    let port = support::free_port(LOCALHOST_V4);
    let listen = format!("127.0.0.1:{port}");
    // `localhost`: there is no /etc/hosts in the root, so this also shows that it resolves
    // without one.
    let app = format!("app=http://localhost:{}/healthz", upstream.port());
    let mut server = Running::spawn(root.command(&tools, &["serve", "--listen", &listen, "--timeout", "2s", &app]));
    let addr: SocketAddr = listen.parse().unwrap();

    let response = get_when_up(addr, "/self", &mut server);
    assert_eq!((response.status, response.text().as_str()), (200, "ok\n"));
    let pid1 = server.pid1();
    assert_runs_as_the_image_does(pid1, &root);

    let response = get(addr, "/all");
    assert_eq!((response.status, response.text().as_str()), (200, "ok\n"), "{response:?}");
    let response = get(addr, "/all/app");
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        upstream.requests().iter().any(|head| head.starts_with("GET /healthz HTTP/1.1")),
        "the upstream saw no probe: {:?}",
        upstream.requests()
    );
    // A failing upstream is reported, not hidden.
    upstream.set(Behaviour::Status(503, "down"));
    let response = get(addr, "/all?verbose");
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.text().contains("[-]app failed: status 503"), "{response:?}");

    // The figure the manifests' memory requests are sized from.
    let status = fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    note(&format!(
        "serve after a few rounds: VmRSS {} (peak VmHWM {})",
        status_field(&status, "VmRSS").unwrap_or("?"),
        status_field(&status, "VmHWM").unwrap_or("?")
    ));

    assert_sigterm_exits_zero(server, pid1);
}

#[test]
fn check_works_from_an_empty_root() {
    let Some(tools) = tools_or_skip("check_works_from_an_empty_root") else {
        return;
    };
    let root = Root::new();
    let upstream = Stub::start(Behaviour::Status(200, "ok"));
    let passing = format!("http://localhost:{}/healthz", upstream.port());
    let (status, stdout, stderr) = run_to_end(root.command(&tools, &["check", "--timeout", "2s", &passing]));
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");

    let closed = format!("tcp://127.0.0.1:{}", support::free_port(LOCALHOST_V4));
    let (status, stdout, stderr) = run_to_end(root.command(&tools, &["check", "--timeout", "2s", &passing, &closed]));
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn run_wraps_a_command_from_an_empty_root() {
    let Some(tools) = tools_or_skip("run_wraps_a_command_from_an_empty_root") else {
        return;
    };
    let root = Root::new();
    let upstream = Stub::start(Behaviour::Status(200, "ok"));
    let ready = format!("http://localhost:{}/ready", upstream.port());
    let quit = format!("http://localhost:{}/quitquitquit", upstream.port());
    let closed = format!("tcp://127.0.0.1:{}", support::free_port(LOCALHOST_V4));
    // The only program in the root is the binary itself, so it is also the wrapped command:
    // its exit code (1, a failing check) must come back through the wrapper.
    let (status, stdout, stderr) = run_to_end(root.command(
        &tools,
        &["run", "--wait", &ready, "--on-exit", &quit, "--", IMAGE_BINARY, "check", "--timeout", "1s", &closed],
    ));
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    let requests = upstream.requests();
    assert!(requests.iter().any(|head| head.starts_with("GET /ready ")), "{requests:?}");
    assert!(requests.iter().any(|head| head.starts_with("POST /quitquitquit ")), "{requests:?}");

    // There is no shell in the image: a command that is not there is exit 127, said clearly.
    let (status, stdout, stderr) = run_to_end(root.command(&tools, &["run", "--", "/bin/sh", "-c", "true"]));
    assert_eq!(status.code(), Some(127), "stdout: {stdout}\nstderr: {stderr}");
}

/// The Dockerfile's own ENTRYPOINT + CMD and HEALTHCHECK, exactly as written there, run the
/// way Docker runs them: the server in its own network namespace, the health check joined to
/// that namespace (like `docker exec`).
#[test]
fn dockerfile_default_command_and_healthcheck_work() {
    let Some(tools) = tools_or_skip("dockerfile_default_command_and_healthcheck_work") else {
        return;
    };
    let image = dockerfile::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    assert_eq!(image.user.as_deref(), Some(IMAGE_USER), "Dockerfile USER");
    let default = image.default_argv();
    assert_eq!(default.first().map(String::as_str), Some(IMAGE_BINARY), "Dockerfile ENTRYPOINT");
    assert_eq!(image.healthcheck.first().map(String::as_str), Some(IMAGE_BINARY), "Dockerfile HEALTHCHECK");
    let args: Vec<&str> = default[1..].iter().map(String::as_str).collect();

    let root = Root::new();
    let server = Running::spawn(root.command_in_own_network(&tools, &args));
    let pid1 = server.pid1();

    let healthcheck_args: Vec<&str> = image.healthcheck[1..].iter().map(String::as_str).collect();
    let check = || {
        let mut cmd = Command::new(&tools.nsenter);
        cmd.env_clear()
            .arg(format!("--net=/proc/{pid1}/ns/net"))
            .arg("--")
            .args(root.chroot_words(&tools, &healthcheck_args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    // Docker retries a failing health check; the server needs a moment to start listening.
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let (status, stdout, stderr) = run_to_end(check());
        if status.code() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HEALTHCHECK {healthcheck_args:?} exited {status}\nstdout: {stdout}\nstderr: {stderr}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_runs_as_the_image_does(pid1, &root);
    assert_sigterm_exits_zero(server, pid1);
}

/// The test helpers themselves: reading a /proc status field.
#[test]
fn status_field_reads_proc_status_lines() {
    let status = "Name:\thealthcheck\nNSpid:\t4242\t1\nUid:\t65532\t65532\t65532\t65532\n";
    assert_eq!(status_field(status, "NSpid"), Some("4242\t1"));
    assert_eq!(status_field(status, "Uid"), Some("65532\t65532\t65532\t65532"));
    assert_eq!(status_field(status, "Gid"), None);
    // No confusion between a name and a longer one that starts with it.
    assert_eq!(status_field("Namespace:\tx\n", "Name"), None);
}

/// The guard itself: a test that fails half-way must not leave its PID 1 behind.
#[test]
fn dropping_the_guard_kills_the_namespace() {
    let Some(tools) = tools_or_skip("dropping_the_guard_kills_the_namespace") else {
        return;
    };
    let root = Root::new();
    let listen = format!("127.0.0.1:{}", support::free_port(LOCALHOST_V4));
    let mut server = Running::spawn(root.command(&tools, &["serve", "--listen", &listen, "tcp://127.0.0.1:9"]));
    get_when_up(listen.parse().unwrap(), "/self", &mut server);
    let pid1 = server.pid1();
    drop(server);
    let gone = || match fs::read_to_string(format!("/proc/{pid1}/status")) {
        Err(_) => true,
        Ok(status) => status_field(&status, "State").is_some_and(|state| state.starts_with('Z')),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() {
        assert!(Instant::now() < deadline, "PID 1 ({pid1}) outlived its guard");
        thread::sleep(Duration::from_millis(10));
    }
}
