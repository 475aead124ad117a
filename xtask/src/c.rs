//! The C binding: installing `libwalletlog` with its header and pkg-config
//! files, and the C tests (real programs compiled by `cc`, linked dynamically
//! and statically, run under valgrind memcheck).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, run};

/// How `install` gets the library built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `cargo build -p walletlog-c`: only what the library needs.
    Package,
    /// `cargo build --workspace --all-targets`: the feature set `cargo test
    /// --workspace` resolved, so the tests rebuild no dependency.
    Workspace,
}

/// Builds `libwalletlog` (`release` or the dev profile) and installs it under
/// `prefix`: `include/walletlog.h`, `lib/libwalletlog.{so,a}`,
/// `lib/pkgconfig/walletlog{,-static}.pc` and `share/walletlog/valgrind.supp`.
pub fn install(root: &Path, release: bool, prefix: &Path, build: Build) -> Result<()> {
    let mut cmd = cargo();
    match build {
        Build::Package => cmd.args(["build", "--quiet", "-p", "walletlog-c"]),
        Build::Workspace => cmd.args(["build", "--quiet", "--workspace", "--all-targets"]),
    };
    if release {
        cmd.arg("--release");
    }
    run(
        &format!("build libwalletlog ({})", profile_name(release)),
        &mut cmd,
    )?;
    let native_libs = native_static_libs(root)?;

    let built = root.join("target").join(profile_name(release));
    let include = prefix.join("include");
    let lib = prefix.join("lib");
    let pkgconfig = lib.join("pkgconfig");
    for dir in [&include, &pkgconfig] {
        std::fs::create_dir_all(dir)?;
    }
    copy(
        &root.join("bindings/c/include/walletlog.h"),
        &include.join("walletlog.h"),
    )?;
    for file in ["libwalletlog.so", "libwalletlog.a"] {
        copy(&built.join(file), &lib.join(file))?;
    }
    // The suppression a valgrind run of a program using walletlog needs.
    let share = prefix.join("share/walletlog");
    std::fs::create_dir_all(&share)?;
    copy(
        &root.join("tests/c/valgrind.supp"),
        &share.join("valgrind.supp"),
    )?;
    let prefix = std::path::absolute(prefix)?;
    let version = env!("CARGO_PKG_VERSION");
    let common = format!(
        "prefix={}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n",
        prefix.display()
    );
    std::fs::write(
        pkgconfig.join("walletlog.pc"),
        format!(
            "{common}Name: walletlog\n\
             Description: Wallet transaction history engine (shared library)\n\
             Version: {version}\n\
             Libs: -L${{libdir}} -lwalletlog\n\
             Libs.private: {native_libs}\n\
             Cflags: -I${{includedir}}\n"
        ),
    )?;
    std::fs::write(
        pkgconfig.join("walletlog-static.pc"),
        format!(
            "{common}Name: walletlog-static\n\
             Description: Wallet transaction history engine (static library)\n\
             Version: {version}\n\
             Libs: ${{libdir}}/libwalletlog.a {native_libs}\n\
             Cflags: -I${{includedir}}\n"
        ),
    )?;
    eprintln!("xtask: libwalletlog installed under {}", prefix.display());
    Ok(())
}

/// The system libraries a static link of a Rust staticlib needs on this
/// platform, as rustc reports them for an empty one (walletlog's C code,
/// SQLite's included, is inside the archive).
fn native_static_libs(root: &Path) -> Result<String> {
    let dir = root.join("target/ctest/native-libs");
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("empty.rs");
    std::fs::write(&source, "")?;
    let output = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--crate-type", "staticlib", "--crate-name", "empty"])
        .args(["--print", "native-static-libs", "--out-dir"])
        .arg(&dir)
        .arg(&source)
        .output()
        .context("could not start rustc")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("rustc could not build an empty staticlib:\n{stderr}");
    }
    Ok(stderr
        .lines()
        .find_map(|l| l.split("native-static-libs: ").nth(1))
        .map(str::trim)
        .context("rustc printed no native-static-libs line")?
        .to_owned())
}

fn profile_name(release: bool) -> &'static str {
    if release {
        "release"
    } else {
        "debug"
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    // Replace rather than overwrite: a running program may map the old file.
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// A new schema on the run's PostgreSQL server (`WALLETLOG_TEST_PG`).
fn pg_location() -> String {
    let admin = std::env::var(walletlog_testpg::ENV).unwrap_or_default();
    let database = walletlog_testpg::with_database(&admin, "walletlog_test");
    walletlog_testpg::with_search_path(&database, &format!("c_history_{}", std::process::id()))
}

/// Installs the Debian packages of the tools the C tests need when missing.
fn ensure_tools() -> Result<()> {
    let needed: Vec<&str> = [
        ("cc", "gcc"),
        ("c++", "g++"),
        ("pkg-config", "pkg-config"),
        ("valgrind", "valgrind"),
    ]
    .into_iter()
    .filter(|(tool, _)| {
        Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
    })
    .map(|(_, package)| package)
    .collect();
    if needed.is_empty() {
        return Ok(());
    }
    crate::apt_install(&needed, "the C test tools")
}

/// One C program of the tests: its source and the arguments it runs with.
struct Program {
    source: PathBuf,
    args: Vec<PathBuf>,
    /// The working directory it runs in.
    cwd: PathBuf,
    /// What its output must contain, beyond a zero exit status.
    expect: &'static [&'static str],
}

/// Builds and runs every C test; returns (passed, failed): one test per
/// program and link mode, plus the header checks.
pub fn test(root: &Path) -> Result<(u64, u64)> {
    ensure_tools()?;
    let work = root.join("target/ctest");
    let prefix = work.join("prefix");
    let bin = work.join("bin");
    let scratch = work.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    for dir in [&bin, &scratch] {
        std::fs::create_dir_all(dir)?;
    }
    install(root, false, &prefix, Build::Workspace)?;
    let pc_path = prefix.join("lib/pkgconfig");
    let pkg_config = |args: &[&str]| -> Result<Vec<String>> {
        let out = Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", &pc_path)
            .args(args)
            .output()
            .context("could not start pkg-config")?;
        if !out.status.success() {
            bail!(
                "pkg-config {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut record = |ok: bool, what: &str| {
        if ok {
            passed += 1;
            eprintln!("xtask: C test ok: {what}");
        } else {
            failed += 1;
            eprintln!("xtask: C test FAILED: {what}");
        }
    };

    // The header alone, as C99 and as C++, included twice.
    let header_test = root.join("tests/c/header_twice.c");
    let include = prefix.join("include");
    let c99 = Command::new("cc")
        .args([
            "-std=c99",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-c",
            "-o",
        ])
        .arg(work.join("header_c99.o"))
        .arg("-I")
        .arg(&include)
        .arg(&header_test)
        .status()?;
    record(
        c99.success(),
        "walletlog.h compiles alone as C99, included twice",
    );
    let cxx = Command::new("c++")
        .args([
            "-std=c++11",
            "-pedantic",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-x",
            "c++",
            "-c",
            "-o",
        ])
        .arg(work.join("header_cxx.o"))
        .arg("-I")
        .arg(&include)
        .arg(&header_test)
        .status()?;
    record(
        cxx.success(),
        "walletlog.h compiles alone as C++11, included twice",
    );

    let plugins = root.join("target/plugins");
    let fixtures = root.join("tests/fixtures/webhooks");
    let programs = [
        Program {
            source: root.join("tests/c/test_api.c"),
            args: vec![scratch.clone()],
            cwd: scratch.clone(),
            expect: &["test_api: ", " 0 failed"],
        },
        Program {
            source: root.join("tests/c/test_threads.c"),
            args: vec![scratch.clone()],
            cwd: scratch.clone(),
            expect: &["test_threads: ", " 0 failed"],
        },
        Program {
            source: root.join("tests/c/test_webhook.c"),
            args: vec![scratch.clone(), plugins, fixtures],
            cwd: scratch.clone(),
            expect: &["test_webhook: ", " 0 failed"],
        },
        Program {
            source: root.join("bindings/c/examples/history.c"),
            args: vec![scratch.join("history.db")],
            cwd: scratch.clone(),
            // 100.00 - 2.90 fee - 25.00 held.
            expect: &[
                "\"USD\":{\"available\":\"72.1\",\"event_count\":3,\"held\":\"25\"",
                "\"event_type\":\"hold\"",
            ],
        },
        // The same example on PostgreSQL: wl_ledger_open takes a
        // postgresql:// location like any other (a new schema of the run's
        // server, created on first open).
        Program {
            source: root.join("bindings/c/examples/history.c"),
            args: vec![PathBuf::from(pg_location())],
            cwd: scratch.clone(),
            expect: &[
                "\"USD\":{\"available\":\"72.1\",\"event_count\":3,\"held\":\"25\"",
                "\"event_type\":\"hold\"",
            ],
        },
        Program {
            source: readme_example(root, &work)?,
            args: vec![],
            // Run twice (dynamic, then static) in one folder: the second
            // run's ingest is a duplicate, the balance the same.
            cwd: scratch.join("readme"),
            expect: &["{\"USD\":{\"available\":\"12.34\""],
        },
    ];
    std::fs::create_dir_all(scratch.join("readme"))?;
    let cflags = pkg_config(&["--cflags", "walletlog"])?;
    let dynamic_libs = pkg_config(&["--libs", "walletlog"])?;
    let static_libs = pkg_config(&["--libs", "walletlog-static"])?;
    let rpath = format!("-Wl,-rpath,{}", prefix.join("lib").display());
    for program in &programs {
        let stem = program
            .source
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a C source has no name")?;
        for (mode, libs) in [("dynamic", &dynamic_libs), ("static", &static_libs)] {
            let exe = bin.join(format!("{stem}-{mode}"));
            let mut cc = Command::new("cc");
            cc.args([
                "-std=c99",
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-g",
                // The tests call wl_debug_panic, which debug builds have.
                "-DWL_DEBUG_HOOKS",
                "-o",
            ])
            .arg(&exe)
            .arg("-I")
            .arg(root.join("tests/c"))
            .args(&cflags)
            .arg(&program.source)
            .args(libs)
            .arg("-lpthread");
            if mode == "dynamic" {
                cc.arg(&rpath);
            }
            run(&format!("cc {stem} ({mode})"), &mut cc)?;
            let what = format!("{stem} ({mode}, under valgrind)");
            record(run_under_valgrind(root, &exe, program)?, &what);
        }
    }
    Ok((passed, failed))
}

/// Writes the README's C example to `work/readme_example.c`.
fn readme_example(root: &Path, work: &Path) -> Result<PathBuf> {
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let section = readme
        .split("\n## C\n")
        .nth(1)
        .context("README.md has no `## C` section")?;
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .context("README.md's C section has no ```c block")?;
    let path = work.join("readme_example.c");
    std::fs::write(&path, code)?;
    Ok(path)
}

/// Runs `exe` under valgrind memcheck: passes when it exits 0 with no
/// memory error and no leak, and prints everything `program.expect` names.
fn run_under_valgrind(root: &Path, exe: &Path, program: &Program) -> Result<bool> {
    eprintln!("xtask: valgrind {}", exe.display());
    let output = Command::new("valgrind")
        .args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,possible",
            "--show-leak-kinds=definite,possible",
        ])
        .arg(format!(
            "--suppressions={}",
            root.join("target/ctest/prefix/share/walletlog/valgrind.supp")
                .display()
        ))
        .arg(exe)
        .args(&program.args)
        .current_dir(&program.cwd)
        // The deliberate panic of wl_debug_panic prints one line, not a trace.
        .env("RUST_BACKTRACE", "0")
        .output()
        .with_context(|| format!("could not start valgrind on {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    let mut ok = output.status.success();
    if !ok {
        eprint!("{stderr}");
        eprintln!("xtask: {} exited with {}", exe.display(), output.status);
    }
    for needle in program.expect {
        if !stdout.contains(needle) {
            eprintln!("xtask: {} did not print {needle:?}", exe.display());
            ok = false;
        }
    }
    Ok(ok)
}
