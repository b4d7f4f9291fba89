//! Named checks: the daemon in a mount namespace of its own whose
//! resolv.conf names a DNS responder this bench runs on a loopback address,
//! so the cost of a round with lookups can be set beside one with IP
//! literals on the same machine, in the same run.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::daemon::{self, Process};

/// A UDP DNS responder: every A question gets 127.0.0.1 with a fixed TTL,
/// every other question NODATA. Counts the questions.
pub struct Responder {
    pub ip: Ipv4Addr,
    pub asked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    pub fn start(ttl: u32) -> io::Result<Responder> {
        let mut last = io::Error::other("no address tried");
        for host in 1..=250u8 {
            let ip = Ipv4Addr::new(127, 53, 253, host);
            let socket = match UdpSocket::bind(SocketAddr::new(IpAddr::V4(ip), 53)) {
                Ok(socket) => socket,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            socket.set_read_timeout(Some(Duration::from_millis(50)))?;
            let asked = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (count, flag) = (Arc::clone(&asked), Arc::clone(&stop));
            let thread = std::thread::spawn(move || respond(&socket, ttl, &count, &flag));
            return Ok(Responder { ip, asked, stop, thread: Some(thread) });
        }
        Err(last)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn respond(socket: &UdpSocket, ttl: u32, asked: &AtomicU64, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    let mut out = Vec::with_capacity(512);
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        let query = &buf[..n];
        // The question: labels from offset 12, then type and class.
        let mut end = 12;
        while let Some(&len) = query.get(end) {
            end += 1 + usize::from(len);
            if len == 0 {
                break;
            }
        }
        let Some(qtype) = query.get(end..end + 2).map(|t| u16::from_be_bytes([t[0], t[1]])) else { continue };
        asked.fetch_add(1, Ordering::Relaxed);
        let a = qtype == 1;
        out.clear();
        out.extend_from_slice(&query[..2]);
        out.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
        out.extend_from_slice(&query[12..end + 4]);
        if a {
            out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&[0, 4, 127, 0, 0, 1]);
        }
        let _ = socket.send_to(&out, from);
    }
}

/// Why named checks cannot be measured here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: a mount namespace and port 53 need root".into());
    }
    let works = Command::new("unshare").args(["-m", "true"]).stderr(Stdio::null()).status();
    (!works.is_ok_and(|s| s.success())).then(|| "unshare -m unavailable (util-linux, mount namespaces)".into())
}

/// `serve` arguments for named http checks: `n{i}.bench` on each port.
pub fn serve_args(port: u16, timeout: &str, checks: &[u16]) -> Vec<String> {
    let mut args = daemon::serve_args(port, timeout, &[]);
    args.extend(checks.iter().enumerate().map(|(i, p)| format!("c{i}=http://n{i}.bench:{p}/health")));
    args
}

/// `unshare -m sh -c '...' sh RESOLV HOSTS`: what follows runs in a mount
/// namespace whose resolv.conf names `responder` (and whose hosts file
/// holds only localhost).
pub fn wrapper(responder: &Responder, dir: &Path) -> io::Result<Vec<String>> {
    let etc = dir.join("names-etc");
    fs::create_dir_all(&etc)?;
    let (resolv, hosts) = (etc.join("resolv.conf"), etc.join("hosts"));
    fs::write(&resolv, format!("nameserver {}\noptions timeout:1\n", responder.ip))?;
    fs::write(&hosts, "127.0.0.1 localhost\n")?;
    let script = r#"mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@""#;
    let mut full: Vec<String> = ["unshare", "-m", "sh", "-c", script, "sh"].iter().map(|s| s.to_string()).collect();
    full.extend([resolv, hosts].iter().map(|p: &PathBuf| p.display().to_string()));
    Ok(full)
}

/// Starts the daemon binary with `args` under [`wrapper`].
pub fn start_daemon(
    daemon_bin: &Path,
    args: &[String],
    port: u16,
    responder: &Responder,
    dir: &Path,
) -> io::Result<Process> {
    let mut full = wrapper(responder, dir)?;
    full.push(daemon_bin.display().to_string());
    full.extend_from_slice(args);
    Process::start(Path::new(&full[0]), &full[1..], port, &dir.join("names.log"), Duration::from_secs(5))
}
