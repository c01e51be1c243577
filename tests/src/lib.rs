//! Cross-component test suite; the tests live in tests/tests/.
//!
//! This library holds what several test files share: where the repository and its tools are, a small
//! command runner with readable failures, the generator of `docs/configuration.md` from the CRD, and
//! the manifests of the real node's NetworkPolicy enforcer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

pub mod config_reference;
pub mod network_policies;

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A tool built by `make test-deps` into `.tools/bin` (helm, kubectl, ...), falling back to `PATH`.
pub fn tool(name: &str) -> PathBuf {
    let local = repo_root().join(".tools/bin").join(name);
    if local.exists() {
        local
    } else {
        PathBuf::from(name)
    }
}

/// Runs a command with optional stdin; fails with the command line, exit status, stdout and stderr.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<String> {
    let out = run_raw(cmd, stdin)?;
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command with optional stdin and returns its output whatever the exit status.
pub fn run_raw(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output> {
    use std::io::Write;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        // A separate thread so a child that writes a lot before reading cannot deadlock us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    child
        .wait_with_output()
        .with_context(|| format!("waiting for {}", describe(cmd)))
}

/// The command line, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A binary of this workspace: `cargo build -p <package> --bin <bin>` (debug, the shared target
/// dir) and the path cargo reports, or the prebuilt one `env_override` names when it is set.
pub fn workspace_binary(package: &str, bin: &str, env_override: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_override) {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    without_test_cargo_env(&mut cmd);
    cmd.current_dir(repo_root()).args([
        "build",
        "-p",
        package,
        "--bin",
        bin,
        "--message-format=json-render-diagnostics",
    ]);
    let out = run_raw(&mut cmd, None)?;
    if !out.status.success() {
        // The rendered compiler errors are on stderr; stdout is one JSON line per artifact.
        bail!(
            "cargo build -p {package} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build did not report the {bin} executable"))
}

/// Splits a multi-document YAML stream into its non-empty documents.
pub fn yaml_documents(text: &str) -> Result<Vec<serde_yaml::Value>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let v = serde_yaml::Value::deserialize(de)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

pub use test_fixtures::without_test_cargo_env;
