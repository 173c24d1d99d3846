//! The crate's examples, run against the simulator as a user would run them.

use std::time::Duration;

use mailroom_sim::{SimConfig, Simulator};

use crate::example_device_code_and_refresh::run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_and_refresh_runs_as_public_and_confidential_client() {
    let sim = Simulator::start(SimConfig {
        device_code_interval: Duration::ZERO,
        // Inside the 5-minute window from the start: the session refreshes silently.
        access_token_lifetime: Duration::from_secs(60),
        strict_refresh_rotation: true,
        ..SimConfig::default().confidential_client("service-app", "s3cret")
    })
    .await
    .unwrap();

    let public = run(&sim.base_url(), "public-app", None).await.unwrap();
    assert!(!public.confidential);
    assert_eq!(public.tenant_id, "common");
    assert!(public.silently_refreshed, "{public:?}");
    assert!(public.rotated, "{public:?}");

    let confidential = run(&sim.base_url(), "service-app", Some("s3cret"))
        .await
        .unwrap();
    assert!(confidential.confidential);
    assert!(confidential.silently_refreshed && confidential.rotated);

    // A wrong secret is refused at the device code step, with the client named.
    let err = run(&sim.base_url(), "service-app", Some("wrong"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("service-app"), "{err}");

    // Per successful run, one silent and one explicit refresh, none replayed.
    let counters = sim.counters();
    assert_eq!(counters.refreshes.values().sum::<u64>(), 4, "{counters:?}");
    assert_eq!(counters.refresh_token_replays_total, 0);
    sim.shutdown().await;
}
