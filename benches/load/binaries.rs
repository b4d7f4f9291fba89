//! The binaries under test: the release build and the static (musl) build,
//! built with cargo from this checkout.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MUSL: &str = "x86_64-unknown-linux-musl";

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

/// Whether rustup has the standard library for `target` (the build would
/// fail without it).
pub fn target_installed(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot).join("lib/rustlib").join(target).join("lib").is_dir()
}

/// Whether an ELF file needs no dynamic loader (no PT_INTERP header).
pub fn is_static(path: &Path) -> io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path)?;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let field = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize);
    let bad = || io::Error::other(format!("{} is not a 64-bit ELF file", path.display()));
    if !elf.starts_with(b"\x7fELF\x02") {
        return Err(bad());
    }
    let (offset, size, count) =
        (field(0x20).ok_or_else(bad)?, u16_at(0x36).ok_or_else(bad)?, u16_at(0x38).ok_or_else(bad)?);
    Ok((0..count).all(|i| {
        let at = offset + i * size;
        elf.get(at..at + 4).is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP)
    }))
}
