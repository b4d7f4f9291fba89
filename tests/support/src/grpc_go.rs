//! The grpc-go health server (tests/grpc/health_server.go), built in GOPATH mode with Debian's Go and golang-google-grpc-dev: a peer for the gRPC tests and the load bench.

use std::path::Path;
use std::process::Command;

pub const GO: &str = "/usr/bin/go";
pub const GOPATH: &str = "/usr/share/gocode";

/// Why the server cannot be built here, if it cannot.
pub fn missing() -> Option<&'static str> {
    let installed = Path::new(GO).exists() && Path::new(GOPATH).join("src/google.golang.org/grpc/health").exists();
    (!installed).then_some("Debian's golang-go and golang-google-grpc-dev not installed")
}

/// `go build -o OUT tests/grpc/health_server.go`; Err with what went wrong.
pub fn build(out: &Path) -> Result<(), String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grpc/health_server.go");
    let built = Command::new(GO)
        .args(["build", "-o"])
        .arg(out)
        .arg(&source)
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", std::env::temp_dir().join("healthcheck-go-cache"))
        .output()
        .map_err(|e| format!("run {GO}: {e}"))?;
    if built.status.success() {
        Ok(())
    } else {
        Err(format!(
            "go build of {} failed ({}): {}",
            source.display(),
            built.status,
            String::from_utf8_lossy(&built.stderr)
        ))
    }
}
