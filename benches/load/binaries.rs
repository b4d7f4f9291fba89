//! The binaries under test: the release build and the static (musl) build,
//! built with cargo from this checkout.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build --release [--target TARGET]`; the path of the binary.
pub fn build(target: Option<&str>) -> io::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--bin", "healthcheck"]);
    let mut dir = root().join("target");
    if let Some(target) = target {
        cmd.args(["--target", target]);
        dir.push(target);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(io::Error::other(format!("cargo build --release failed ({status})")));
    }
    Ok(dir.join("release/healthcheck"))
}
