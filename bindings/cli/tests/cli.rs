//! The `walletlog` command run as a user runs it: the built binary, a real
//! ledger file in a temporary folder, real plugins from `cargo xtask plugins`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hmac::{Hmac, Mac};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_walletlog");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin(name: &str) -> PathBuf {
    let p = root().join(format!("target/plugins/{name}.wasm"));
    assert!(
        p.exists(),
        "{}: build the plugins first with `cargo xtask plugins`",
        p.display()
    );
    p
}

fn fixture(path: &str) -> PathBuf {
    root().join("tests/fixtures/webhooks").join(path)
}

/// A folder with a ledger path in it; commands run with it as working directory.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_remove("WALLETLOG_DB")
            .env("NO_COLOR", "1");
        c
    }

    /// Runs `walletlog ARGS` on `./walletlog.db`.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend(args);
        let out = self.run(&all);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
    }

    fn export(&self, db: &str) -> Vec<Value> {
        let out = self.run(&["--db", db, "export"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn event_line(wallet: &str, pei: &str, ty: &str, amount: &str, at: &str) -> String {
    format!(
        r#"{{"wallet_id":"{wallet}","provider":"acme","event_type":"{ty}","amount":"{amount}","currency":"EUR","occurred_at":"{at}","provider_event_id":"{pei}"}}"#
    )
}

fn three_events() -> String {
    [
        event_line("w1", "e1", "deposit", "100.50", "2026-02-01T10:00:00Z"),
        event_line("w1", "e2", "fee", "0.50", "2026-02-01T10:00:01Z"),
        event_line("w1", "e3", "hold", "40", "2026-02-02T08:00:00+02:00"),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn ingest_prints_each_line_and_replays_are_duplicates() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    let out = s.run(&["ingest", "events.jsonl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("line 1: created"), "{text}");
    assert!(text.contains("3 created, 0 duplicate"), "{text}");
    assert!(s.path("walletlog.db").exists());

    let out = s.run(&["--json", "ingest", "events.jsonl"]);
    assert_eq!(code(&out), 0);
    let results: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["line"], i + 1);
        assert_eq!(r["duplicate"], true);
        assert_eq!(r["matched_on"], "provider_event_id");
    }
    assert_eq!(s.export("walletlog.db").len(), 3);
}

#[test]
fn ingest_reads_a_file_with_a_byte_order_mark_and_names_a_directory() {
    let s = Sandbox::new();
    let line = event_line("w1", "e1", "deposit", "5", "2026-02-01T10:00:00Z");
    s.write("bom.jsonl", format!("\u{feff}{line}\n"));
    let out = s.run(&["ingest", "bom.jsonl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.export("walletlog.db").len(), 1);
    std::fs::create_dir(s.path("events.d")).unwrap();
    let out = s.run(&["ingest", "events.d"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("events.d: it is a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ingest_stops_at_the_first_refused_line_and_names_it() {
    let s = Sandbox::new();
    let lines = [
        event_line("w1", "e1", "deposit", "5", "2026-02-01T10:00:00Z"),
        event_line("w1", "e1", "deposit", "6", "2026-02-01T10:00:00Z"), // conflict
        event_line("w1", "e2", "deposit", "7", "2026-02-01T10:00:00Z"),
    ];
    s.write("conflict.jsonl", lines.join("\n"));
    let out = s.run(&["ingest", "conflict.jsonl"]);
    assert_eq!(code(&out), 3, "conflicts exit 3");
    assert!(
        stdout(&out).contains("1 created, 0 duplicate before line 2"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("line 2: conflict"),
        "{}",
        stderr(&out)
    );
    let events = s.export("walletlog.db");
    assert_eq!(
        events.len(),
        1,
        "line 1 stored, line 2 refused, line 3 not reached"
    );
    assert_eq!(events[0]["amount"], "5");

    s.write(
        "bad.jsonl",
        r#"{"wallet_id":"w1","provider":"acme","event_type":"deposit","amount":1.5,"currency":"EUR","occurred_at":"2026-02-01T10:00:00Z"}"#,
    );
    let out = s.run(&["--json", "ingest", "bad.jsonl"]);
    assert_eq!(code(&out), 3);
    let err: Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["kind"], "validation");
    assert_eq!(err["error"]["field"], "amount");
    assert_eq!(err["error"]["line"], 1);
    assert_eq!(s.export("walletlog.db").len(), 1);
}

/// What a page printed after `more: walletlog `: the next page's arguments.
fn next_page_command(page: &str) -> &str {
    page.lines()
        .find_map(|l| l.strip_prefix("more: walletlog "))
        .unwrap_or_else(|| panic!("no next-page command in {page}"))
}

#[test]
fn history_pages_filters_and_json() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    assert_eq!(code(&s.run(&["ingest", "events.jsonl"])), 0);

    let out = s.run(&["history", "w1"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("OCCURRED_AT"), "{text}");
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("2026-02-02T06:00:00Z") && lines[1].contains("hold"));

    // Pages of one, following cursors: each event once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["history", "w1", "--limit", "1", "--order", "asc"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = s.json(&args);
        for e in page["events"].as_array().unwrap() {
            seen.push(e["provider_event_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["e1", "e2", "e3"]);

    let page = s.json(&["history", "w1", "--type", "fee", "--type", "hold"]);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let page = s.json(&[
        "history",
        "w1",
        "--since",
        "2026-02-01T10:00:01Z",
        "--until",
        "2026-02-02T06:00:00Z",
    ]);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    // The printed next-page command asks for the same query: run as
    // printed, it gives the next page, not a foreign-cursor error.
    let out = s.run(&[
        "history", "w1", "--limit", "1", "--type", "fee", "--type", "hold", "--order", "asc",
    ]);
    let text = stdout(&out);
    let more = next_page_command(&text);
    assert!(
        more.starts_with("history --limit 1 --order asc --type fee --type hold --cursor "),
        "{more}"
    );
    assert!(more.ends_with(" -- w1"), "{more}");
    let words: Vec<&str> = more.split(' ').collect();
    let next = s.run(&words);
    assert_eq!(code(&next), 0, "{more}: {}", stderr(&next));
    assert!(!stdout(&next).contains("more: "), "{}", stdout(&next));
    let first_and_next = format!("{text}{}", stdout(&next));
    assert!(
        first_and_next.contains(" fee ") && first_and_next.contains(" hold "),
        "{first_and_next}"
    );

    for (args, says) in [
        (vec!["history", "w1", "--limit", "0"], "limit"),
        (
            vec!["history", "w1", "--type", "gift"],
            "event_types (--type)",
        ),
        (vec!["history", "w1", "--since", "yesterday"], "since"),
        (vec!["history", "w1", "--cursor", "bogus"], "cursor"),
        (vec!["history", "w1", "--order", "up"], "order"),
    ] {
        let out = s.run(&args);
        assert_eq!(code(&out), 3, "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let out = s.run(&["history", "nobody"]);
    assert_eq!(stdout(&out).trim(), "no events for wallet nobody");
}

#[test]
fn balance_now_and_as_of() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    assert_eq!(code(&s.run(&["ingest", "events.jsonl"])), 0);
    let b = s.json(&["balance", "w1"]);
    assert_eq!(b["EUR"]["available"], "60");
    assert_eq!(b["EUR"]["held"], "40");
    assert_eq!(b["EUR"]["total"], "100");
    assert_eq!(b["EUR"]["event_count"], 3);
    let b = s.json(&["balance", "w1", "--as-of", "2026-02-01T10:00:00Z"]);
    assert_eq!(b["EUR"]["available"], "100.5");
    assert_eq!(b["EUR"]["event_count"], 1);
    let out = s.run(&["balance", "w1"]);
    assert!(stdout(&out).contains("EUR"), "{}", stdout(&out));
    let out = s.run(&["balance", "w1", "--as-of", "soon"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("as_of (--as-of)"), "{}", stderr(&out));
}

fn paystack_signature(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn webhook_through_the_paystack_plugin_with_secrets_from_env_or_file() {
    let s = Sandbox::new();
    let body_path = fixture("paystack/charge.success.json");
    let body = std::fs::read(&body_path).unwrap();
    let header = format!(
        "x-paystack-signature: {}",
        paystack_signature("sk_test_cli", &body)
    );
    let plugin_path = plugin("paystack");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "webhook".into(),
            "--provider".into(),
            "paystack".into(),
            "--plugin".into(),
            plugin_path.display().to_string(),
            body_path.display().to_string(),
            "--header".into(),
            header.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // No secret: refused before the plugin runs, nothing stored.
    let out = s.cmd().args(args(&[])).output().unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));

    let out = s
        .cmd()
        .args(args(&["--json", "--secret-env", "PAYSTACK_SECRET"]))
        .env("PAYSTACK_SECRET", "sk_test_cli")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["created"], true);
    assert_eq!(results[0]["event"]["amount"], "100");
    assert_eq!(results[0]["event"]["currency"], "NGN");
    assert_eq!(results[0]["event"]["wallet_id"], "CUS_qo38as2hpsgk2r0");

    // The retry, with the secret from a file: a duplicate.
    s.write("paystack.secret", "sk_test_cli\n");
    let out = s
        .cmd()
        .args(args(&["--secret-file", "paystack.secret"]))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("duplicate (provider_event_id)"),
        "{}",
        stdout(&out)
    );

    // The body on standard input (`-`): the same delivery, a duplicate.
    let mut from_stdin = args(&["--secret-file", "paystack.secret"]);
    let at = from_stdin
        .iter()
        .position(|a| *a == body_path.display().to_string())
        .unwrap();
    from_stdin[at] = "-".into();
    let mut child = s
        .cmd()
        .args(from_stdin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("duplicate (provider_event_id)"),
        "{}",
        stdout(&out)
    );

    // A wrong secret: refused, and the secret is not echoed.
    let out = s
        .cmd()
        .args(args(&["--secret-env", "PAYSTACK_SECRET"]))
        .env("PAYSTACK_SECRET", "sk_test_wrong")
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    assert!(!stderr(&out).contains("sk_test_wrong"));
    assert_eq!(s.export("walletlog.db").len(), 1);

    // An unset variable, a plugin of another provider, a malformed header: usage.
    let out = s
        .cmd()
        .args(args(&["--secret-env", "NOT_SET_ANYWHERE"]))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("NOT_SET_ANYWHERE"));
    let mut wrong = args(&[]);
    wrong[2] = "square".into();
    let out = s.cmd().args(&wrong).env("S", "x").output().unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not \"square\""), "{}", stderr(&out));
    let mut bad_header = args(&[]);
    bad_header[7] = "no-colon-here".into();
    assert_eq!(code(&s.cmd().args(&bad_header).output().unwrap()), 2);
    // There is no way to pass a secret on the command line.
    assert_eq!(
        code(
            &s.cmd()
                .args(args(&["--secret", "sk_test_cli"]))
                .output()
                .unwrap()
        ),
        2
    );
}

#[test]
fn a_hostile_plugin_is_a_plugin_failure_and_stores_nothing() {
    let s = Sandbox::new();
    s.write("loop.txt", "loop");
    s.write("ok.txt", "ok");
    let hostile = plugin("hostile");
    let run = |body: &str| {
        s.run(&[
            "webhook",
            "--provider",
            "hostile",
            "--plugin",
            hostile.to_str().unwrap(),
            "--unsigned",
            body,
        ])
    };
    let out = run("loop.txt");
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("fuel"), "{}", stderr(&out));
    assert!(s.export("walletlog.db").is_empty());
    let out = run("ok.txt");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.export("walletlog.db").len(), 1);
}

#[test]
fn plugin_check_reports_info_and_limits_or_the_refusal() {
    let s = Sandbox::new();
    let v = s.json(&["plugin", "check", plugin("square").to_str().unwrap()]);
    assert_eq!(v["provider"], "square");
    assert_eq!(v["signature"], "hmac");
    assert_eq!(v["limits"]["fuel_per_call"], 50_000_000);
    // Which world it implements: the SDK's plugins target 1.1.0.
    assert_eq!(v["contract"], "1.1.0");
    let out = s.run(&["plugin", "check", plugin("stripe").to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("stripe-v1"), "{}", stdout(&out));
    assert!(stdout(&out).contains("walletlog:normalizer@1.1.0"));
    assert!(stdout(&out).contains("memory_bytes_max"));

    s.write("core.wasm", b"\0asm\x01\0\0\0");
    let out = s.run(&["plugin", "check", "core.wasm"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    s.write("garbage.wasm", b"not wasm at all");
    assert_eq!(code(&s.run(&["plugin", "check", "garbage.wasm"])), 4);
    assert_eq!(code(&s.run(&["plugin", "check", "missing.wasm"])), 2);
    assert!(
        !s.path("walletlog.db").exists(),
        "plugin check needs no ledger"
    );
}

#[test]
fn export_then_import_gives_the_same_ledger() {
    export_then_import_into("copy.db");
}

/// From SQLite to PostgreSQL: the same events, ids, sequences and
/// balances, and an audit trail of the import that verifies.
#[test]
fn export_from_sqlite_then_import_into_postgresql_gives_the_same_ledger() {
    let copy = walletlog_testpg::server().fresh_location("cli_import");
    export_then_import_into(&copy);
    // The PostgreSQL ledger is backed up with its own tools.
    let s = Sandbox::new();
    let out = s.run(&["--db", &copy, "backup", "copy-backup.db"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
    assert!(!s.path("copy-backup.db").exists());
}

fn export_then_import_into(copy_db: &str) {
    let s = Sandbox::new();
    let mut lines = Vec::new();
    for i in 0..1200 {
        let ty = ["deposit", "withdrawal", "hold", "release", "fee"][i % 5];
        lines.push(event_line(
            &format!("w{}", i % 7),
            &format!("e{i}"),
            ty,
            &format!("{}.{:02}", i % 50 + 1, i % 100),
            &format!("2026-03-{:02}T{:02}:{:02}:00Z", i % 28 + 1, i % 24, i % 60),
        ));
    }
    s.write("big.jsonl", lines.join("\n"));
    let out = s.run(&["--durability", "normal", "import", "big.jsonl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 1200 lines: 1200 created, 0 duplicate"));

    let original = s.export("walletlog.db");
    let exported = s.write("export.jsonl", s.run(&["export"]).stdout);
    let v = s.json(&["--db", copy_db, "import", exported.to_str().unwrap()]);
    assert_eq!(
        (v["created"].as_u64(), v["invalid"].as_u64()),
        (Some(1200), Some(0))
    );
    let copy = s.export(copy_db);
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("created_at");
                e
            })
            .collect()
    };
    assert_eq!(
        strip(&original),
        strip(&copy),
        "same events, ids and sequences"
    );
    for w in 0..7 {
        let wallet = format!("w{w}");
        assert_eq!(
            s.json(&["balance", &wallet]),
            s.json(&["--db", copy_db, "balance", &wallet])
        );
    }
    // Importing again: all duplicates. Exporting after a sequence: the rest.
    let v = s.json(&["--db", copy_db, "import", exported.to_str().unwrap()]);
    assert_eq!(v["duplicate"], 1200);
    assert_eq!(
        s.run(&["export", "--since-sequence", "1150"])
            .stdout
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        50
    );
    assert_eq!(code(&s.run(&["audit", "verify"])), 0);
    let out = s.run(&["--db", copy_db, "audit", "verify"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn import_reports_bad_lines_by_number_and_keeps_the_rest() {
    let s = Sandbox::new();
    let mut content = Vec::new();
    content.extend(event_line("w1", "a", "deposit", "1", "2026-02-01T00:00:00Z").as_bytes());
    content.extend(b"\n{\"wallet_id\": \"w1\", \"amount\": \n"); // truncated JSON
    content.extend(b"\xff\xfe\x00garbage\x01\n"); // binary
    content.extend(event_line("w1", "a", "deposit", "2", "2026-02-01T00:00:00Z").as_bytes()); // conflict
    content.extend(b"\n\n");
    content.extend(event_line("w1", "b", "deposit", "3", "2026-02-01T00:00:00Z").as_bytes());
    content.extend(b"\n");
    s.write("mixed.jsonl", &content);
    let out = s.run(&["import", "mixed.jsonl"]);
    assert_eq!(code(&out), 3, "refused lines exit 3");
    let text = stdout(&out);
    assert!(
        text.contains("line 2: invalid event: is not valid JSON"),
        "{text}"
    );
    assert!(
        text.contains("line 3: invalid event: the line is not UTF-8"),
        "{text}"
    );
    assert!(text.contains("line 4: conflict"), "{text}");
    assert!(
        text.contains("imported 5 lines: 2 created, 0 duplicate, 1 conflicting, 2 invalid"),
        "{text}"
    );
    let events = s.export("walletlog.db");
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["provider_event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    // Two created and one refused replay: each line audited once.
    let db = rusqlite::Connection::open(s.path("walletlog.db")).unwrap();
    let actions: Vec<i64> = db
        .prepare("SELECT action FROM audit ORDER BY sequence")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actions, [1, 3, 1], "created, conflict, created");

    let v = s.json_status(&["import", "mixed.jsonl"], 3);
    assert_eq!(v["duplicate"], 2);
    assert_eq!(v["refused"][0]["line"], 2);
    assert_eq!(v["refused"][2]["kind"], "conflict");
}

impl Sandbox {
    fn json_status(&self, args: &[&str], expected: i32) -> Value {
        let mut all = vec!["--json"];
        all.extend(args);
        let out = self.run(&all);
        assert_eq!(code(&out), expected, "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[test]
fn audit_verify_exits_5_on_a_damaged_trail() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    assert_eq!(code(&s.run(&["ingest", "events.jsonl"])), 0);
    let v = s.json(&["audit", "verify"]);
    assert_eq!(
        (v["ok"].as_bool(), v["events_checked"].as_u64()),
        (Some(true), Some(3))
    );
    let conn = rusqlite::Connection::open(s.path("walletlog.db")).unwrap();
    conn.execute("UPDATE events SET amount = '1000' WHERE sequence = 2", [])
        .unwrap();
    drop(conn);
    let out = s.run(&["audit", "verify"]);
    assert_eq!(code(&out), 5);
    assert!(
        stdout(&out).contains("AUDIT TRAIL DAMAGED: event altered"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_database_comes_from_the_flag_the_environment_or_the_default() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    let out = s
        .cmd()
        .args(["ingest", "events.jsonl"])
        .env("WALLETLOG_DB", s.path("env.db"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(s.path("env.db").exists() && !s.path("walletlog.db").exists());
    assert_eq!(s.export("env.db").len(), 3);
    // Read commands refuse to create a ledger.
    let out = s.run(&["history", "w1"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no ledger at walletlog.db"),
        "{}",
        stderr(&out)
    );
    assert!(!s.path("walletlog.db").exists());
    // Nor make one of an empty file.
    s.write("empty.db", "");
    let out = s.run(&["--db", "empty.db", "balance", "w1"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no ledger at empty.db (the file is empty)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::metadata(s.path("empty.db")).unwrap().len(), 0);
    // A command that writes makes a ledger of it.
    assert_eq!(
        code(&s.run(&["--db", "empty.db", "ingest", "events.jsonl"])),
        0
    );
    assert_eq!(s.export("empty.db").len(), 3);
}

#[test]
fn bad_invocations_and_bad_files_get_their_exit_codes() {
    let s = Sandbox::new();
    assert_eq!(code(&s.run(&["frobnicate"])), 2);
    assert_eq!(code(&s.run(&["balance"])), 2);
    assert_eq!(code(&s.run(&["ingest", "missing.jsonl"])), 2);
    assert_eq!(code(&s.run(&["--durability", "maybe", "ingest", "x"])), 2);
    let help = s.run(&["--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("Exit codes"));
    // A file that is not a walletlog ledger: a storage failure, left untouched.
    let garbage = vec![b'G'; 8192];
    s.write("garbage.db", &garbage);
    let out = s.run(&["--db", "garbage.db", "balance", "w1"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(std::fs::read(s.path("garbage.db")).unwrap(), garbage);
    // The audit key comes from the environment, checked as hex.
    let out = s
        .cmd()
        .args(["--audit-key-env", "KEY", "ingest", "-"])
        .env("KEY", "not hex")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("audit_key_hex"), "{}", stderr(&out));
}

/// The README's shell example, run as written with `walletlog` on the PATH.
#[test]
fn the_readme_shell_example_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("## Shell")
        .expect("the README has a Shell section");
    let block = &readme[start..];
    let code_start = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let code_end = code_start + block[code_start..].find("```").unwrap();
    let script = &block[code_start..code_end];
    let s = Sandbox::new();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Twice in the same directory: the example can be run again as it is.
    for run in ["first", "second"] {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(s.dir.path())
            .env("PATH", &path)
            .env_remove("WALLETLOG_DB")
            .output()
            .unwrap();
        assert_eq!(
            code(&out),
            0,
            "{run} run: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(text.contains("audit trail ok"), "{text}");
        assert!(text.contains("USD"), "{text}");
    }
}

#[test]
fn backup_copies_a_live_ledger_and_verifies_the_copy() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    assert_eq!(code(&s.run(&["ingest", "events.jsonl"])), 0);
    let out = s.run(&["backup", "copy.db"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("the copy verifies: 3 records and 3 events checked"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.export("copy.db"), s.export("walletlog.db"));
    let v = s.json_status(&["backup", "copy2.db"], 0);
    assert_eq!(v["audit"]["ok"], true);
    // Never over an existing file, which stays as it was.
    s.write("taken.db", "keep me");
    let out = s.run(&["backup", "taken.db"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(s.path("taken.db")).unwrap(), b"keep me");
    assert_eq!(code(&s.run(&["--db", "missing.db", "backup", "x.db"])), 2);
}

#[test]
fn walletlog_log_prints_the_library_logs_without_amounts_or_secrets() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    let out = s
        .cmd()
        .args(["ingest", "events.jsonl"])
        .env("WALLETLOG_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let logs = stderr(&out);
    assert_eq!(logs.matches("outcome=\"created\"").count(), 3, "{logs}");
    assert!(logs.contains("wallet_id=w1"), "{logs}");
    assert!(!logs.contains("100.5"), "amounts are not logged: {logs}");
    let quiet = s.run(&["ingest", "events.jsonl"]);
    assert!(stderr(&quiet).is_empty(), "no logs unless asked");
    let bad = s
        .cmd()
        .args(["ingest", "events.jsonl"])
        .env("WALLETLOG_LOG", "chatty")
        .output()
        .unwrap();
    assert_eq!(code(&bad), 0);
    assert!(stderr(&bad).contains("not a level"));
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let s = Sandbox::new();
    let lines: String = (0..2000)
        .map(|i| {
            event_line(
                "w1",
                &format!("e{i}"),
                "deposit",
                "1",
                "2026-02-01T00:00:00Z",
            ) + "\n"
        })
        .collect();
    s.write("many.jsonl", lines.as_bytes());
    assert_eq!(code(&s.run(&["import", "many.jsonl"])), 0);
    // `walletlog history w1 --limit 1000 | head -1`, and `export | head -1`:
    // the reader goes away long before the writer is done.
    for args in [&["history", "w1", "--limit", "1000"][..], &["export"][..]] {
        let mut child = s
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        let mut out = child.stdout.take().unwrap();
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        drop(out);
        let done = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert!(
            done.status.success() || done.status.signal() == Some(libc_sigpipe()),
            "{args:?} ended with {:?}",
            done.status
        );
        assert_ne!(done.status.code(), Some(101), "not a panic");
    }
}

/// SIGPIPE's number on Linux.
fn libc_sigpipe() -> i32 {
    13
}

const ACME_SECRET: &str = "acme_cli_secret";

/// An acme webhook body (tests/replay-plugin) and its signature header.
fn acme(s: &Sandbox, name: &str, id: &str, kind: &str, cents: i64) -> (PathBuf, String) {
    let body = format!(
        r#"{{"id":"{id}","type":"{kind}","wallet":"w1","amount":{cents},"currency":"USD","created":1767225600}}"#
    );
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(ACME_SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (
        s.write(name, body),
        format!("X-Acme-Signature: sha256={sig}"),
    )
}

#[test]
fn inbox_list_show_and_replay_under_a_fixed_plugin() {
    let s = Sandbox::new();
    let v1 = plugin("acme-v1");
    let v2 = plugin("acme-v2");
    let webhook = |body: &Path, header: &str| {
        s.cmd()
            .args(["webhook", "--provider", "acme", "--plugin"])
            .arg(&v1)
            .arg(body)
            .args(["--header", header, "--secret-env", "ACME_SECRET"])
            .env("ACME_SECRET", ACME_SECRET)
            .output()
            .unwrap()
    };
    let (paid, paid_sig) = acme(&s, "paid.json", "evt_1", "payment.succeeded", 10_000);
    let out = webhook(&paid, &paid_sig);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Stored, and said on stdout: no warning for a delivery that went in.
    assert!(stdout(&out).contains("(ingested)"), "{}", stdout(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let (payout, payout_sig) = acme(&s, "payout.json", "evt_2", "payout.paid", 2_500);
    let out = webhook(&payout, &payout_sig);
    // The plugin refuses the delivery: refused input, kept for a replay.
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("(unsupported), kept in the inbox"),
        "{}",
        stderr(&out)
    );

    let page = s.json(&["inbox", "list"]);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["verdict"], "unsupported");
    assert_eq!(entries[1]["verdict"], "ingested");
    let dead = entries[0]["delivery_id"].as_str().unwrap().to_owned();
    let table = stdout(&s.run(&["inbox", "list", "--verdict", "unsupported"]));
    assert!(
        table.contains(&dead) && table.contains("payout.paid"),
        "{table}"
    );
    assert!(!table.contains("ingested"), "{table}");
    // The next-page command, run as printed, gives the second delivery,
    // on a ledger named by a --db that needs quoting.
    let move_ledger = |from: &str, to: &str| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::rename(
                s.path(&format!("{from}{suffix}")),
                s.path(&format!("{to}{suffix}")),
            );
        }
    };
    move_ledger("walletlog.db", "other ledger.db");
    let first = stdout(&s.run(&["--db", "other ledger.db", "inbox", "list", "--limit", "1"]));
    let more = next_page_command(&first);
    assert!(
        more.starts_with("--db 'other ledger.db' inbox list --limit 1 --order desc --cursor "),
        "{more}"
    );
    // The shell's reading of the printed words: the one quoted word, whole.
    let words: Vec<String> = more
        .replacen("'other ledger.db'", "\u{0}", 1)
        .split(' ')
        .map(|w| w.replace('\u{0}', "other ledger.db"))
        .collect();
    let second = stdout(&s.run(&words.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        second.contains(&entries[1]["delivery_id"].as_str().unwrap()[..8]),
        "{second}"
    );
    assert!(!second.contains("more: "), "{second}");
    move_ledger("other ledger.db", "walletlog.db");

    let shown = s.json(&["inbox", "show", &dead]);
    assert_eq!(
        shown["body_text"],
        std::fs::read_to_string(&payout).unwrap()
    );
    assert_eq!(shown["headers"][0][0], "X-Acme-Signature");
    assert_eq!(shown["attempt_history"][0]["kind"], "receipt");
    let human = stdout(&s.run(&["inbox", "show", &dead]));
    assert!(
        human.contains("\"payout.paid\"") && human.contains("receipt"),
        "{human}"
    );
    let out = s.run(&["inbox", "show", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(code(&out), 3);
    assert_eq!(code(&s.run(&["inbox", "show", "nope"])), 3);

    // The same plugin: still failing, exit 3. The fixed one: the payout
    // is created; again: duplicates only.
    let replay = |p: &Path, extra: &[&str]| {
        let mut c = s.cmd();
        c.args(["--json", "inbox", "replay", "--plugin"])
            .arg(p)
            .args(extra);
        c.output().unwrap()
    };
    let out = replay(&v1, &["--verdict", "unsupported"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // Choosing nothing: the dead letters of the plugin's provider.
    let out = replay(&v2, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["replayed"].as_u64(), report["created"].as_u64()),
        (Some(1), Some(1))
    );
    // Nothing is dead any more: choosing nothing replays nothing.
    let report: Value = serde_json::from_slice(&replay(&v2, &[]).stdout).unwrap();
    assert_eq!(report["replayed"], 0);
    let out = replay(&v2, &["--provider", "acme", "--verdict", "unsupported"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["replayed"], 0);
    // By id, as an argument or with --id: the payout again, a duplicate.
    for by_id in [vec![dead.as_str()], vec!["--id", dead.as_str()]] {
        let out = replay(&v2, &by_id);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["duplicates"], 1);
        assert_eq!(report["created"], 0);
    }
    let balance = s.json(&["balance", "w1"]);
    assert_eq!(balance["USD"]["available"], "75");
    assert_eq!(code(&s.run(&["audit", "verify"])), 0);
    // Ids with a verdict or a provider is a usage error.
    for extra in [
        vec!["--id", dead.as_str(), "--verdict", "ingested"],
        vec![dead.as_str(), "--provider", "acme"],
    ] {
        let out = s
            .cmd()
            .args(["inbox", "replay", "--plugin"])
            .arg(&v2)
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{extra:?}");
    }
    // A provider whose plugin was not given: nothing to run it through.
    let out = s
        .cmd()
        .args(["inbox", "replay", "--plugin"])
        .arg(&v2)
        .args(["--provider", "stripe"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no --plugin given is stripe's"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unsigned_never_turns_off_a_declared_signature_check() {
    // The new plugin author's mistake: --unsigned with a plugin that
    // declares a scheme, and no secret. A tampered body must be refused.
    let s = Sandbox::new();
    let (body, header) = acme(&s, "paid.json", "evt_1", "payment.succeeded", 100);
    let tampered = s.write(
        "tampered.json",
        std::fs::read_to_string(&body)
            .unwrap()
            .replace("100,", "9000000,"),
    );
    let out = s
        .cmd()
        .args(["webhook", "--provider", "acme", "--plugin"])
        .arg(plugin("acme-v1"))
        .arg(&tampered)
        .args(["--header", &header, "--unsigned"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the webhook secret is missing"),
        "{}",
        stderr(&out)
    );
    assert!(s.export("walletlog.db").is_empty());
    let page = s.json(&["inbox", "list"]);
    assert_eq!(
        page["entries"].as_array().unwrap().len(),
        0,
        "not stored raw"
    );
}

#[test]
fn plugin_run_shows_the_events_or_the_error_and_the_cost_and_stores_nothing() {
    let s = Sandbox::new();
    let (paid, _) = acme(&s, "paid.json", "evt_1", "payment.succeeded", 1250);
    let out = s
        .cmd()
        .args(["--json", "plugin", "run"])
        .arg(plugin("acme-v2"))
        .arg(&paid)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["contract"], "1.1.0");
    assert_eq!(v["events"][0]["amount"], "12.5");
    assert_eq!(v["events"][0]["occurred_at"], "2026-01-01T00:00:00Z");
    assert!(v["error"].is_null());
    for cost in ["fuel", "peak_memory", "wall_time", "output"] {
        let used = v["cost"][cost]["used"].as_u64().unwrap();
        let limit = v["cost"][cost]["limit"].as_u64().unwrap();
        assert!(used > 0 && used < limit, "{cost}: {used} of {limit}");
    }
    assert!(
        !s.path("walletlog.db").exists(),
        "nothing stored, no ledger made"
    );

    // The author's most likely mistake: minor units as major ones.
    let cents = s.write(
        "cents.json",
        r#"{"wallet_id":"w1","event_type":"deposit","amount":"12.345","currency":"USD","provider_event_id":"e1","occurred_at":"2026-01-01T00:00:00Z"}"#,
    );
    let out = s
        .cmd()
        .args(["plugin", "run"])
        .arg(plugin("standard-webhooks"))
        .arg(&cents)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("warning: 12.345 USD has 3 decimals; USD has 2"),
        "{text}"
    );
    assert!(text.contains("peak memory"), "{text}");

    // A refusal is shown with its exit code: unsupported is refused input
    // (3), an exhausted budget a plugin failure (4).
    let (payout, _) = acme(&s, "payout.json", "evt_2", "payout.paid", 1);
    let out = s
        .cmd()
        .args(["plugin", "run"])
        .arg(plugin("acme-v1"))
        .arg(&payout)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    assert!(
        stdout(&out).contains("refused: plugin acme@1.0.0: event type payout.paid"),
        "{}",
        stdout(&out)
    );
    // Too large to send the plugin: refused input, not a plugin failure.
    let big = s.write("big.json", vec![b'a'; 1_048_577]);
    let out = s
        .cmd()
        .args(["plugin", "run"])
        .arg(plugin("acme-v1"))
        .arg(&big)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    let lp = s.write("loop.txt", "loop");
    let out = s
        .cmd()
        .args(["plugin", "run"])
        .arg(plugin("hostile"))
        .arg(&lp)
        .output()
        .unwrap();
    assert_eq!(code(&out), 4);
    assert!(stdout(&out).contains("out_of_fuel"), "{}", stdout(&out));
}

#[test]
fn audit_keygen_checkpoint_and_verify_against_it() {
    let s = Sandbox::new();
    s.write("events.jsonl", three_events());
    assert_eq!(code(&s.run(&["ingest", "events.jsonl"])), 0);
    let out = s.run(&[
        "audit",
        "keygen",
        "--signing-key-file",
        "cp.key",
        "--public-key-file",
        "cp.pub",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path("cp.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never over an existing key.
    let again = s.run(&[
        "audit",
        "keygen",
        "--signing-key-file",
        "cp.key",
        "--public-key-file",
        "x.pub",
    ]);
    assert_eq!(code(&again), 2);
    let out = s.run(&["audit", "checkpoint", "--key-file", "cp.key"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("walletlog-checkpoint v1\n") && text.contains("\nsequence 3\n"),
        "{text}"
    );
    s.write("cp.txt", &text);
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--checkpoint", "cp.txt"];
        args.extend(extra);
        s.run(&args)
    };
    let out = verify(&["--public-key", "cp.pub"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("it extends the checkpoint"),
        "{}",
        stdout(&out)
    );
    // Several files after one flag, as `--checkpoint F...` reads.
    let out = verify(&["cp.txt", "--public-key", "cp.pub"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("it extends all 2 checkpoints"),
        "{}",
        stdout(&out)
    );
    // The wrong key: exit 5, as any damage.
    let out = s.run(&[
        "audit",
        "keygen",
        "--signing-key-file",
        "b.key",
        "--public-key-file",
        "b.pub",
    ]);
    assert_eq!(code(&out), 0);
    let out = verify(&["--public-key", "b.pub"]);
    assert_eq!(code(&out), 5);
    assert!(
        stdout(&out).contains("checkpoint signature invalid"),
        "{}",
        stdout(&out)
    );
    let json = s.run(&[
        "--json",
        "audit",
        "verify",
        "--checkpoint",
        "cp.txt",
        "--public-key",
        "b.pub",
    ]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["problem"], "checkpoint_bad_signature");
    // A checkpoint without a key to check it with is a usage error.
    assert_eq!(code(&verify(&[])), 2);
    // The signing key is never printed.
    let key = std::fs::read_to_string(s.path("cp.key")).unwrap();
    assert!(!text.contains(key.trim()));
    // Key files of 32 raw bytes, as Python's ed25519_keypair() gives them.
    let raw = |hex_file: &str, raw_file: &str| {
        let hex = std::fs::read_to_string(s.path(hex_file)).unwrap();
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        std::fs::write(s.path(raw_file), bytes).unwrap();
    };
    raw("cp.key", "cp.key.raw");
    raw("cp.pub", "cp.pub.raw");
    let out = s.run(&["audit", "checkpoint", "--key-file", "cp.key.raw"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    s.write("cp-raw.txt", stdout(&out));
    let out = s.run(&[
        "audit",
        "verify",
        "--checkpoint",
        "cp-raw.txt",
        "cp.txt",
        "--public-key",
        "cp.pub.raw",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    // Neither 32 bytes nor 64 hex digits: refused input, naming the key.
    for (file, text) in [
        ("short.pub", "abcd"),
        // 32 bytes, but text: half a hex key, not a raw one.
        ("half.pub", "0123456789abcdef0123456789abcdef"),
        ("half-nl.pub", "0123456789abcdef0123456789abcde\n"),
    ] {
        s.write(file, text);
        let out = verify(&["--public-key", file]);
        assert_eq!(code(&out), 3, "{file}");
        assert!(stderr(&out).contains("verifying_key"), "{}", stderr(&out));
    }
}
