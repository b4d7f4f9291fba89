//! Random-mutation fuzzing of the same oracles on stable Rust, for machines
//! without nightly (cargo fuzz needs it):
//!
//!     cd fuzz && cargo run --release --example stable_driver -- [TARGET|all] [SECONDS] [SEED]
//!
//! `... -- seed-corpus` writes the built-in seeds to `corpus/TARGET/` for
//! `cargo fuzz run TARGET` to start from. The pool starts from the built-in seeds, `corpus/TARGET/` (a cargo fuzz
//! corpus, when there is one) and `regressions/TARGET/`, and grows with
//! mutated inputs. A failing input is written to `artifacts/TARGET/`.

use std::panic;
use std::path::Path;
use std::time::{Duration, Instant};

use healthcheck_fuzz::mutate::{mutate, Rng};
use healthcheck_fuzz::{Target, TARGETS};

/// Inputs kept for mutation; older ones are replaced at random past this.
const POOL: usize = 4096;
/// One input in this many joins the pool.
const KEEP_ONE_IN: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if args.first().is_some_and(|a| a == "seed-corpus") {
        for target in &TARGETS {
            let out = dir.join("corpus").join(target.name);
            std::fs::create_dir_all(&out).expect("create the corpus directory");
            for (i, seed) in target.seeds.iter().enumerate() {
                std::fs::write(out.join(format!("seed-{i}")), seed).expect("write a seed");
            }
        }
        return;
    }
    let which = args.first().map_or("all", String::as_str);
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let targets: Vec<&Target> = TARGETS.iter().filter(|t| which == "all" || t.name == which).collect();
    if targets.is_empty() {
        eprintln!("unknown target '{which}': use request, response, cli, dns, grpc, tls or all");
        std::process::exit(64);
    }
    // Failures are reported below, with the input; the default hook would
    // print every one of them twice.
    panic::set_hook(Box::new(|_| {}));
    let mut failures = 0;
    for target in targets {
        failures += fuzz(dir, target, Duration::from_secs(seconds), seed);
    }
    std::process::exit(i32::from(failures > 0));
}

fn fuzz(dir: &Path, target: &Target, budget: Duration, seed: u64) -> usize {
    let mut pool: Vec<Vec<u8>> = target.seeds.iter().map(|s| s.to_vec()).collect();
    for sub in ["corpus", "regressions"] {
        pool.extend(read_dir(&dir.join(sub).join(target.name)));
    }
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let (mut execs, mut failures) = (0u64, 0);
    while start.elapsed() < budget {
        for _ in 0..256 {
            let input = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, input, other, target.max_len);
            execs += 1;
            if let Err(e) = panic::catch_unwind(|| (target.run)(&input)) {
                failures += 1;
                report(dir, target.name, &input, &e);
            }
            if rng.chance(KEEP_ONE_IN) {
                if pool.len() < POOL {
                    pool.push(input);
                } else {
                    let i = rng.below(pool.len());
                    pool[i] = input;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {execs} inputs in {secs:.0}s ({:.0}/s), {failures} failures, pool {}",
        target.name,
        execs as f64 / secs,
        pool.len()
    );
    failures
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect()
}

fn report(dir: &Path, name: &str, input: &[u8], err: &Box<dyn std::any::Any + Send>) {
    let msg = err.downcast_ref::<String>().map(String::as_str).or(err.downcast_ref::<&str>().copied());
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let out = dir.join("artifacts").join(name);
    let path = out.join(format!("crash-{hash:016x}"));
    let _ = std::fs::create_dir_all(&out).and_then(|()| std::fs::write(&path, input));
    println!("{name}: FAILED: {} -> {}", msg.unwrap_or("panic"), path.display());
    println!("  input: {:?}", String::from_utf8_lossy(input));
}
