//! `mailroom_imap_commands_total` through a real recorder, against Dovecot.

use mailroom_core::{Connector, FolderRef};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::support::*;

/// The value of one series in a Prometheus text page (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn commands_are_counted_by_class_and_result() {
    let recorder = PrometheusBuilder::new().install_recorder().unwrap();
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=5).await;
    let c = connector(&d, "alice");
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert!(!pages.is_empty());
    // A folder that does not exist: SELECT answers NO.
    assert!(
        c.sync_folder(&FolderRef::id("NoSuchFolder"), None)
            .await
            .is_err()
    );
    let text = recorder.render();
    let count = |command: &str, result: &str| {
        sample(
            &text,
            &format!("mailroom_imap_commands_total{{command=\"{command}\",result=\"{result}\"}}"),
        )
    };
    assert!(
        count("select", "ok") + count("examine", "ok") >= 1.0,
        "{text}"
    );
    assert!(count("fetch", "ok") >= 1.0, "{text}");
    assert!(
        count("select", "no") + count("examine", "no") >= 1.0,
        "the refused SELECT: {text}"
    );
    assert_eq!(
        count("select", "bad") + count("fetch", "bad"),
        0.0,
        "{text}"
    );
}
