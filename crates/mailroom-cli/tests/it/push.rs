use crate::support::{DEMO, Env, closed_port};

/// `worker --public-url` subscribes the account's folders (validated by the
/// simulator against the worker's own listener) and `account show` says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_worker_subscribes_and_account_show_says_so() {
    let env = Env::new(5).await;
    env.add_demo();
    env.expect(
        2,
        &["worker", "--once", "--public-url", "http://127.0.0.1:1"],
    );
    let port = closed_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let args = [
        "worker",
        "--once",
        "--listen",
        &listen,
        "--public-url",
        &url,
    ];
    // The first pass finds the folders, the second subscribes them.
    env.expect(0, &args);
    let stored = env.json(&["account", "show", DEMO]);
    assert!(stored["folders"][0]["push"].is_null(), "{stored}");
    // Due again now: the pass subscribed nothing yet.
    env.expect(0, &args);
    let shown = env.json(&["account", "show", DEMO]);
    assert_eq!(shown["folders"][0]["push"]["status"], "active", "{shown}");
    assert_eq!(env.sim.subscriptions().len(), 1);
    assert_eq!(env.sim.counters().validations, 2);
    let (text, _) = env.expect(0, &["account", "show", DEMO]);
    assert!(text.contains("active until"), "{text}");
    // Removing the account deletes the subscription on Graph.
    env.expect(0, &["account", "remove", DEMO, "--yes"]);
    assert!(env.sim.subscriptions().is_empty());
}
