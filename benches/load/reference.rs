//! The reference server (nginx, one worker, a fixed 200) and the load
//! generator (wrk) that drives it and the daemon alike.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Process;

pub const NGINX: &str = "/usr/sbin/nginx";

/// Where a program is on PATH, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

/// Starts nginx with one worker answering `200 ok` on a loopback port, its
/// config, pid file and logs in `dir`.
pub fn start_nginx(dir: &Path) -> io::Result<Process> {
    let port = support::free_port(support::LOCALHOST_V4);
    let d = dir.display();
    // keepalive_requests is raised so both servers keep every connection
    // for the whole run: the comparison is of request handling only.
    let config = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config)?;
    let args = [
        "-p".into(),
        format!("{d}"),
        "-c".into(),
        path.display().to_string(),
        "-e".into(),
        format!("{d}/nginx-error.log"),
    ];
    Process::start(Path::new(NGINX), &args, port, &dir.join("nginx.log"), std::time::Duration::from_secs(5))
}

/// How wrk opens connections.
#[derive(Clone, Copy)]
pub enum Mode {
    KeepAlive,
    /// `Connection: close`: one connection per request, as kubelet probes.
    Close,
}

/// What one wrk run measured.
pub struct Run {
    pub rate: f64,
    pub requests: u64,
}

/// `wrk -t1 -c50` against `url` for `seconds`.
pub fn wrk(url: &str, mode: Mode, seconds: u32) -> io::Result<Run> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c50", &format!("-d{seconds}s")]);
    if let Mode::Close = mode {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")?.trim().parse().ok());
    // "  123456 requests in 5.00s, 16.48MB read"
    let requests = text.lines().find_map(|l| l.split_once(" requests in ")?.0.trim().parse().ok());
    // wrk counts non-2xx answers and socket errors apart; neither may occur.
    let clean = !text.contains("Non-2xx") && !text.contains("Socket errors");
    match (rate, requests) {
        (Some(rate), Some(requests)) if out.status.success() && clean => Ok(Run { rate, requests }),
        _ => {
            Err(io::Error::other(format!("wrk against {url} failed:\n{text}{}", String::from_utf8_lossy(&out.stderr))))
        }
    }
}
