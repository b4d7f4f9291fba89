//! Reads what a Dockerfile's final stage runs (ENTRYPOINT, CMD, HEALTHCHECK), for the image and manifest tests.

use std::path::Path;

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
