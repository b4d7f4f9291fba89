//! The gRPC server of the gRPC round figure: tests/grpc/health_server.go
//! (grpc-go), built in GOPATH mode with Debian's Go, killed when dropped.

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::grpc_go;

pub struct Server {
    child: Child,
    pub port: u16,
}

/// Builds the server into `dir` and starts it; Err says what is missing.
pub fn start(dir: &Path) -> io::Result<Server> {
    if let Some(why) = grpc_go::missing() {
        return Err(io::Error::other(why));
    }
    let program = dir.join("grpc-health-server");
    grpc_go::build(&program).map_err(io::Error::other)?;
    let mut child = Command::new(&program).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?).read_line(&mut line)?;
    let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok());
    let mut server = Server { child, port: 0 };
    server.port = port.ok_or_else(|| io::Error::other(format!("gRPC server said {line:?}")))?;
    Ok(server)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
