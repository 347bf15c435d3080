//! The real Sentry SDKs, provisioned once per checkout into `target/sdk-env/`: a Python venv
//! with `sentry-sdk`, and npm directories with `@sentry/node` and with `@sentry/browser` (beside
//! `jsdom`, the DOM it runs in here, as in Sentry's own browser tests), at pinned versions. A file lock
//! keeps parallel tests (and test processes) from installing at the same time. A failed
//! install fails the test loudly: these tests never skip.

#![allow(dead_code)]

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;

pub const PYTHON_SDK: &str = "sentry-sdk==2.75.0";
pub const NODE_SDK: &str = "@sentry/node@11.12.0";
/// A DOM for Node, to run the dashboard's script against the real server without a browser.
pub const JSDOM: &str = "jsdom@29.1.1";
pub const BROWSER_SDK: &str = "@sentry/browser@11.17.0";
/// sentry-cli 2 uploads release files one by one when a server offers no chunked upload for
/// them (the legacy API); sentry-cli 3 always uploads artifact bundles in chunks.
pub const SENTRY_CLI_2: &str = "@sentry/cli@2.58.6";
pub const SENTRY_CLI_3: &str = "@sentry/cli@3.8.0";

fn env_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-env")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `install` once, under an exclusive lock on `<dir>.lock`, unless `<dir>/.done-<tag>`
/// says a previous run finished it.
fn provision(name: &str, tag: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let root = env_dir();
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    let dir = root.join(name);
    let done = root.join(format!(
        "{name}.done-{}",
        tag.replace(['/', '@', '=', ' '], "_")
    ));
    let lock = File::create(root.join(format!("{name}.lock")))
        .unwrap_or_else(|e| panic!("create the lock file in {}: {e}", root.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", root.display()));
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        install(&dir);
        File::create(&done).unwrap_or_else(|e| panic!("create {}: {e}", done.display()));
    }
    let _ = lock.unlock();
    dir
}

/// The Python interpreter of a venv holding the pinned `sentry-sdk`.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let dir = provision("python", PYTHON_SDK, |dir| {
            run(
                Command::new("python3").arg("-m").arg("venv").arg(dir),
                "python3 -m venv (the Python SDK tests need python3 with venv)",
            );
            run(
                Command::new(dir.join("bin/pip")).args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    PYTHON_SDK,
                ]),
                &format!("pip install {PYTHON_SDK}"),
            );
        });
        dir.join("bin/python")
    })
    .clone()
}

/// A directory whose `node_modules` holds the pinned `@sentry/node`.
pub fn node_modules() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| npm_package("node", &[NODE_SDK]))
        .clone()
}

/// A directory whose `node_modules` holds the pinned `jsdom` (the dashboard tests).
pub fn jsdom_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| npm_package("jsdom", &[JSDOM])).clone()
}

/// A directory whose `node_modules` holds the pinned `@sentry/browser` and `jsdom`.
pub fn browser_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| npm_package("browser", &[BROWSER_SDK, JSDOM]))
        .clone()
}

/// The pinned `sentry-cli` 2 binary (npm installs the platform's build).
pub fn sentry_cli_2() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| npm_package("sentry-cli-2", &[SENTRY_CLI_2]))
        .join(".bin/sentry-cli")
}

/// The pinned `sentry-cli` 3 binary.
pub fn sentry_cli_3() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| npm_package("sentry-cli-3", &[SENTRY_CLI_3]))
        .join(".bin/sentry-cli")
}

/// Installs pinned npm packages into `target/sdk-env/<name>/` (once per checkout).
fn npm_package(name: &str, packages: &[&str]) -> PathBuf {
    let tag = packages.join(" ");
    provision(name, &tag, |dir| {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::write(dir.join("package.json"), "{\"private\":true}\n")
            .unwrap_or_else(|e| panic!("write package.json: {e}"));
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .args(packages)
                .current_dir(dir),
            &format!("npm install {tag} (these tests need node and npm)"),
        );
    })
    .join("node_modules")
}

/// What a script printed and how it ended.
pub struct ScriptRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// The last stdout line, as JSON.
    pub fn json(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "the script printed no JSON ({e}):\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `program file` with `source` written to a temporary `file`, without blocking the
/// server the test runs on the same runtime.
async fn run_script(
    program: &Path,
    file: &str,
    source: &str,
    args: &[&str],
    env: &[(&str, &Path)],
) -> ScriptRun {
    let dir = tempfile::tempdir().expect("a temporary directory for the script");
    let path = dir.path().join(file);
    std::fs::write(&path, source).expect("write the script");
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(&path)
        .args(args)
        .current_dir(dir.path())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} {file} did not finish in 120 s", program.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    ScriptRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a Python script with the Sentry SDK; it must exit 0.
pub async fn python_script(source: &str, args: &[&str]) -> ScriptRun {
    let py = tokio::task::spawn_blocking(python)
        .await
        .expect("provision Python");
    let r = run_script(&py, "app.py", source, args, &[]).await;
    assert!(
        r.success,
        "the Python script failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Runs a Node script with `jsdom` resolvable; the caller judges the exit.
pub async fn jsdom_script(source: &str, args: &[&str]) -> ScriptRun {
    node_with(jsdom_modules, source, args).await
}

/// Runs a Node script with `@sentry/browser` and `jsdom` resolvable; the caller judges the
/// exit.
pub async fn browser_script(source: &str, args: &[&str]) -> ScriptRun {
    node_with(browser_modules, source, args).await
}

/// Runs a Node script with `@sentry/node` resolvable; the caller judges the exit.
pub async fn node_script(source: &str, args: &[&str]) -> ScriptRun {
    node_with(node_modules, source, args).await
}

/// Runs a Node script with the `node_modules` that `modules` provisions on `NODE_PATH`.
async fn node_with(modules: fn() -> PathBuf, source: &str, args: &[&str]) -> ScriptRun {
    let modules = tokio::task::spawn_blocking(modules)
        .await
        .expect("provision the npm packages");
    run_script(
        Path::new("node"),
        "app.js",
        source,
        args,
        &[("NODE_PATH", &modules)],
    )
    .await
}
