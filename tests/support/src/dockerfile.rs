//! Reads what a Dockerfile's final stage runs (ENTRYPOINT, CMD, HEALTHCHECK), for the image and manifest tests.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// The run-time settings of a Dockerfile's final stage, in exec (JSON array) form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// The HEALTHCHECK command, without its leading `CMD`.
    pub healthcheck: Vec<String>,
    pub user: Option<String>,
}

impl ImageConfig {
    /// What the container runs with no arguments: ENTRYPOINT followed by CMD.
    pub fn default_argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// The final stage of the Dockerfile at `path`.
pub fn read(path: &Path) -> ImageConfig {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Parses Dockerfile text. Every ENTRYPOINT, CMD and HEALTHCHECK must use the exec form: the
/// image has no shell to run the shell form with.
pub fn parse(text: &str) -> Result<ImageConfig, String> {
    let mut config = ImageConfig::default();
    for line in logical_lines(text) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        match instruction.to_ascii_uppercase().as_str() {
            // A new stage starts from its base image's settings, which a test cannot know; only
            // the final stage matters, so start over.
            "FROM" => config = ImageConfig::default(),
            "ENTRYPOINT" => {
                config.entrypoint = exec_form(rest)?;
                // Docker: setting ENTRYPOINT resets a CMD inherited from the base image.
                config.cmd.clear();
            }
            "CMD" => config.cmd = exec_form(rest)?,
            "USER" => config.user = Some(rest.to_string()),
            "HEALTHCHECK" => config.healthcheck = healthcheck_command(rest)?,
            _ => {}
        }
    }
    Ok(config)
}

/// `[--interval=10s ...] CMD ["a", "b"]` -> `["a", "b"]`; `NONE` -> `[]`.
fn healthcheck_command(rest: &str) -> Result<Vec<String>, String> {
    let mut words = rest;
    loop {
        words = words.trim_start();
        if let Some(after) = words.strip_prefix("--") {
            words = after.split_once(char::is_whitespace).map_or("", |(_, r)| r);
        } else if words.eq_ignore_ascii_case("NONE") {
            return Ok(Vec::new());
        } else if words.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("CMD")) {
            return exec_form(&words[3..]);
        } else {
            return Err(format!("HEALTHCHECK without CMD: {rest:?}"));
        }
    }
}

/// A JSON array of strings (the exec form); JSON is YAML, so the YAML parser reads it.
fn exec_form(text: &str) -> Result<Vec<String>, String> {
    let text = text.trim();
    if !text.starts_with('[') {
        return Err(format!("shell form, but the image has no shell: {text:?}"));
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("{text:?}: {e}"))?;
    let Some(Yaml::Array(items)) = docs.first() else {
        return Err(format!("not a JSON array: {text:?}"));
    };
    items
        .iter()
        .map(|item| match item {
            Yaml::String(s) => Ok(s.clone()),
            other => Err(format!("not a string in {text:?}: {other:?}")),
        })
        .collect()
}

/// Instructions with their `\` continuations joined, and without comment or parser directive
/// lines (a comment line inside a continuation is dropped too, as Docker does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

#[test]
fn parses_the_final_stage_in_exec_form() {
    let text = r#"# syntax=docker/dockerfile:1
FROM rust AS build
CMD ["cargo", "build"]
FROM scratch
ENTRYPOINT ["/app/healthcheck"]
CMD ["serve", "--port", \
     # a comment inside a continuation
     "8081"]
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["/app/healthcheck", "check", "http://127.0.0.1:8081/self"]
USER 65532:65532
"#;
    let config = parse(text).unwrap();
    assert_eq!(config.default_argv(), ["/app/healthcheck", "serve", "--port", "8081"]);
    assert_eq!(config.healthcheck, ["/app/healthcheck", "check", "http://127.0.0.1:8081/self"]);
    assert_eq!(config.user.as_deref(), Some("65532:65532"));
}

/// The image has no shell, so a shell-form command is an error, not a command that fails later.
#[test]
fn refuses_the_shell_form() {
    assert!(parse("FROM scratch\nCMD serve --port 8081\n").is_err());
    assert!(parse("FROM scratch\nHEALTHCHECK CMD-SHELL true\n").is_err());
}

/// The local sources of every `COPY` and `ADD` (those without `--from`, which copy from
/// another stage or image), as written: what the build context must hold.
pub fn context_sources(text: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for line in logical_lines(text) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        if !["COPY", "ADD"].iter().any(|i| instruction.eq_ignore_ascii_case(i)) {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (flags, operands): (Vec<&str>, Vec<&str>) = words.into_iter().partition(|w| w.starts_with("--"));
        if flags.iter().any(|flag| flag.starts_with("--from=")) {
            continue;
        }
        // The last operand is the destination.
        if let Some((_, sources_of_line)) = operands.split_last() {
            sources.extend(sources_of_line.iter().map(|s| s.to_string()));
        }
    }
    sources
}

/// A `docker build` or `podman build` command, as a Dockerfile's comment documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    /// `docker` or `podman`.
    pub tool: String,
    /// `-f FILE`, relative to where the command runs.
    pub file: Option<String>,
    /// `--ignorefile FILE` (podman).
    pub ignorefile: Option<String>,
    /// The context directory, the one operand.
    pub context: String,
}

/// The build commands in the comment lines of a Dockerfile (`#   docker build ... .`).
pub fn documented_builds(text: &str) -> Vec<BuildCommand> {
    // Comment lines, with a command's `\` continuations joined.
    let mut comments = Vec::new();
    let mut continued = false;
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix('#') else {
            continued = false;
            continue;
        };
        let (comment, continues) = match comment.trim_end().strip_suffix('\\') {
            Some(head) => (head, true),
            None => (comment, false),
        };
        match comments.last_mut() {
            Some(last) if continued => *last = format!("{last} {comment}"),
            _ => comments.push(comment.to_string()),
        }
        continued = continues;
    }
    let mut commands = Vec::new();
    for comment in &comments {
        let words: Vec<&str> = comment.split_whitespace().collect();
        let [tool @ ("docker" | "podman"), "build", args @ ..] = words.as_slice() else { continue };
        let mut command = BuildCommand { tool: tool.to_string(), file: None, ignorefile: None, context: String::new() };
        let mut args = args.iter();
        while let Some(&arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if arg.starts_with("--") => (flag, Some(value)),
                _ => (arg, None),
            };
            let mut value = || inline.map(str::to_string).or_else(|| args.next().map(|v| v.to_string()));
            match flag {
                "-f" | "--file" => command.file = value(),
                "--ignorefile" => command.ignorefile = value(),
                // Flags this reader knows to take a value; any other flag is a switch.
                "-t" | "--tag" | "--format" | "--platform" | "--build-arg" | "--target" => {
                    value();
                }
                _ if flag.starts_with('-') => {}
                _ => command.context = arg.to_string(),
            }
        }
        commands.push(command);
    }
    commands
}

/// The ignore file that a build command's builder applies to its context, relative to where
/// the command runs, or `None` when there is none. Podman takes `--ignorefile`, else the
/// context's `.containerignore` or `.dockerignore`. Docker (BuildKit, the default builder since
/// Docker 23) takes `FILE.dockerignore` beside the Dockerfile before the context's
/// `.dockerignore`.
pub fn ignore_file(build: &BuildCommand, cwd: &Path) -> Option<PathBuf> {
    let context = Path::new(&build.context);
    let candidates: Vec<PathBuf> = match (build.tool.as_str(), &build.ignorefile, &build.file) {
        ("podman", Some(file), _) => vec![PathBuf::from(file)],
        ("podman", None, _) => vec![context.join(".containerignore"), context.join(".dockerignore")],
        (_, _, Some(file)) => vec![PathBuf::from(format!("{file}.dockerignore")), context.join(".dockerignore")],
        (_, _, None) => vec![context.join(".dockerignore")],
    };
    candidates.into_iter().find(|path| cwd.join(path).is_file())
}

/// A `.dockerignore` (or `.containerignore`) file, matched as Docker and Podman match it:
/// patterns in order, `!` for an exception, the last pattern that matches a path or one of
/// its parent directories decides. `*` and `?` stay within one path segment; `**` is any
/// number of segments.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// (is an exception, the pattern's segments)
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub fn read(path: &Path) -> Ignore {
        Ignore::parse(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}")))
    }

    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (exception, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let segments = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_string).collect();
                (exception, segments)
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        let mut excluded = false;
        for (exception, pattern) in &self.patterns {
            let hits = (1..=segments.len()).any(|n| matches_segments(pattern, &segments[..n]));
            if hits {
                excluded = !exception;
            }
        }
        excluded
    }
}

fn matches_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|skip| matches_segments(rest, &path[skip..])),
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(name, path)| glob(first.as_bytes(), name.as_bytes()) && matches_segments(rest, path)),
    }
}

/// One path segment against a pattern with `*` and `?` (no character classes: none of the
/// ignore files here use them).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

#[test]
fn ignore_matches_as_docker_does() {
    let ignore = Ignore::parse("# comment\n*\n!Cargo.toml\n!src/\n!scripts/build-static\n**/target/\n");
    for kept in ["Cargo.toml", "src", "src/main.rs", "src/dns/mod.rs", "scripts/build-static"] {
        assert!(!ignore.excludes(kept), "{kept} should be kept");
    }
    for left_out in ["README.md", "scripts/other", "db-migration-runner", "src/target/x", "target/debug/healthcheck"] {
        assert!(ignore.excludes(left_out), "{left_out} should be left out");
    }
    let ignore = Ignore::parse("*/temp*\n/b?d\n");
    assert!(ignore.excludes("somedir/temporary.txt") && !ignore.excludes("temp"));
    assert!(ignore.excludes("bad") && ignore.excludes("bed/x") && !ignore.excludes("bead"));
}

#[test]
fn reads_documented_build_commands_and_copy_sources() {
    let text = "# Build it:\n#   docker build -f deploy/x.Dockerfile -t repo/x:0.1.0 .\n\
                #   podman build --ignorefile=deploy/x.ignore \\\n#     -f deploy/x.Dockerfile --tag repo/x ctx\n\
                FROM scratch\nCOPY --from=repo/y:1 /a /a\nCOPY --chown=1:1 prog lib/ /app/\nADD x.tar /\n";
    let builds = documented_builds(text);
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert_eq!(builds[0].file.as_deref(), Some("deploy/x.Dockerfile"));
    assert_eq!(
        (builds[0].tool.as_str(), builds[0].context.as_str(), builds[0].ignorefile.as_deref()),
        ("docker", ".", None)
    );
    assert_eq!((builds[1].context.as_str(), builds[1].ignorefile.as_deref()), ("ctx", Some("deploy/x.ignore")));
    assert_eq!(context_sources(text), ["prog", "lib/", "x.tar"]);
}
