//! The shipped kind of binary: whether the musl target is there to build it, and whether an ELF file needs a dynamic loader.

use std::io;
use std::path::Path;
use std::process::Command;

/// The target the image's binary is built for on x86_64 hosts (the Dockerfile's amd64 case).
pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// Whether rustc can build for `target` here: rustup installs it, but only where its download
/// server is reachable, so a machine without it cannot get it.
pub fn target_installed(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot).join("lib/rustlib").join(target).join("lib").is_dir()
}

/// Whether a 64-bit little-endian ELF file needs no dynamic loader: a PT_INTERP program header
/// names the loader, and a static (or static-pie) binary has none.
pub fn is_static(path: &Path) -> io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path)?;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let field = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize);
    let bad = || io::Error::other(format!("{} is not a 64-bit ELF file", path.display()));
    if !elf.starts_with(b"\x7fELF\x02") {
        return Err(bad());
    }
    // e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38.
    let (offset, size, count) =
        (field(0x20).ok_or_else(bad)?, u16_at(0x36).ok_or_else(bad)?, u16_at(0x38).ok_or_else(bad)?);
    Ok((0..count).all(|i| {
        let at = offset + i * size;
        elf.get(at..at + 4).is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP)
    }))
}
