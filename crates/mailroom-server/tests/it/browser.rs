//! The status page in a real browser: Debian's Chromium, headless, started by the
//! test. `--dump-dom` shows what the browser built; `--screenshot` shows that the
//! table is drawn (header band and one ruled row per account).
//!
//! Chromium is a test requirement like PostgreSQL: without it this test fails and
//! says how to install it (`cargo xtask services` does), it never skips.

use std::path::Path;
use std::time::Duration;

use mailroom_server::ops::Ops;
use mailroom_sync::store::SyncOutcome;
use mailroom_sync::{AccountStatus, Store};

use crate::support::{add_account, serve, syncer};

/// The header background of the table (`th{background:#dde4f0}`).
const HEADER: [u8; 3] = [0xdd, 0xe4, 0xf0];
/// The table's rules (`border:1px solid #444`).
const RULE: [u8; 3] = [0x44, 0x44, 0x44];

fn chromium() -> String {
    for name in ["chromium", "chromium-browser"] {
        if std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_owned();
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    panic!(
        "Chromium is not installed{}: the status page test needs a real browser; \
         `cargo xtask services` installs it (apt-get install -y chromium)",
        if ci { " on this CI machine" } else { "" }
    );
}

/// Runs headless Chromium on `url` with `args`; its stdout.
async fn run_chromium(url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=1200,700",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium ends within 90 s")
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An RGB image.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let step = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected PNG color type {other:?}"),
        };
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let rgb = buf[..info.buffer_size()]
            .chunks_exact(step)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Image {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

/// The number of body rows of the drawn table: finds the header band, then counts
/// the horizontal rules crossed going down a column inside the table. An error
/// when there is no table.
fn table_rows(img: &Image) -> Result<usize, String> {
    // The header band: the first pixel row with a long run of its colour (exact:
    // anti-aliased text can come close to it).
    let run_of = |y: usize| -> Option<(usize, usize)> {
        let xs: Vec<usize> = (0..img.width).filter(|&x| img.at(x, y) == HEADER).collect();
        (xs.len() >= 300).then(|| (xs[0], xs[xs.len() - 1]))
    };
    let Some((top, (left, right))) = (0..img.height).find_map(|y| run_of(y).map(|r| (y, r))) else {
        return Err("no table header drawn".to_owned());
    };
    if right - left < 400 {
        return Err(format!("the header is {} px wide", right - left));
    }
    // Down a column just inside the first cell: count the rules below the header.
    let x = left + 3;
    let mut rules = 0;
    let mut in_rule = false;
    let mut last_rule = top;
    for y in top..img.height {
        let rule = near(img.at(x, y), RULE);
        if rule && !in_rule {
            rules += 1;
            last_rule = y;
        }
        in_rule = rule;
        // Far below the last rule: past the table. A row is as tall as its most
        // wrapped cell: bob's error takes four lines at this width (about 92 px) in
        // Debian's Chromium with its default fonts, so the bound is well past that.
        if !rule && y > last_rule + 240 {
            break;
        }
    }
    // Rules: below the header, then one below each body row.
    if rules < 2 {
        return Err(format!("{rules} horizontal rule(s) under the header"));
    }
    Ok(rules - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_its_table_in_chromium() {
    chromium();
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let syncer = syncer(&store, None);
    let creds = mailroom_sync::Credentials::OAuth(mailroom_core::OAuthCredentials::new("c"));
    let now = chrono::Utc::now();
    let outcomes = [
        ("alice@contoso.test", AccountStatus::Active, None, None),
        (
            "bob@contoso.test",
            AccountStatus::NeedsReauth,
            Some(
                "cannot refresh token for client c: AADSTS700082: The refresh token has expired due to inactivity. (invalid_grant, trace_id t-1, correlation_id c-1)",
            ),
            Some("AADSTS700082"),
        ),
        (
            "carol@contoso.test",
            AccountStatus::Active,
            Some("cannot sync Inbox: HTTP 503 (request-id r-9, client-request-id c-9)"),
            None,
        ),
    ];
    for (email, status, error, code) in outcomes {
        let a = add_account(&syncer, email, &creds).await;
        store
            .finish_sync(
                a.id,
                None,
                SyncOutcome {
                    status,
                    error: error.map(str::to_owned),
                    auth_error_code: code.map(str::to_owned),
                    finished_at: now,
                    next_sync_at: Some(now + chrono::Duration::minutes(5)),
                },
            )
            .await
            .unwrap();
    }
    let (addr, _s) = serve(&syncer, Ops::new()).await;
    let url = format!("http://{addr}/status");

    // The DOM Chromium built (from its own Accept header: the HTML page).
    let dom = run_chromium(&url, &["--dump-dom".to_owned()]).await;
    assert!(dom.contains("<table id=\"accounts\">"), "{dom}");
    assert_eq!(dom.matches("<tr class=").count(), 3, "{dom}");
    for needle in [
        "alice@contoso.test",
        "<td class=\"status\">needs_reauth</td>",
        "AADSTS700082",
        "correlation_id c-1",
        "request-id r-9, client-request-id c-9",
    ] {
        assert!(dom.contains(needle), "{needle} in {dom}");
    }
    assert!(!dom.contains("<script"), "no JavaScript: {dom}");

    // The screenshot: a header and three ruled rows.
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("status.png");
    run_chromium(&url, &[format!("--screenshot={}", shot.display())]).await;
    let rows = table_rows(&Image::read(&shot));
    if rows != Ok(3) {
        let kept = std::env::temp_dir().join("mailroom-status-failed.png");
        let _ = std::fs::copy(&shot, &kept);
        panic!(
            "the status table: {rows:?} rows (screenshot: {})",
            kept.display()
        );
    }

    // The same check on a page without a table fails.
    let plain = dir.path().join("healthz.png");
    run_chromium(
        &format!("http://{addr}/healthz"),
        &[format!("--screenshot={}", plain.display())],
    )
    .await;
    assert!(table_rows(&Image::read(&plain)).is_err());
}
