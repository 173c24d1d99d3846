//! The claim of due accounts walks an index: its cost does not grow with the table.

use chrono::{Duration, Utc};
use mailroom_core::AccountStatus;
use mailroom_store::{Store, SyncFinish, SyncOutcome};
use sea_orm::sqlx::{self, Connection as _, PgConnection};

/// The claim as it was before `m20261206_000004_fleet_claim`: the `OR … IS NULL`
/// conditions and `NULLS FIRST` leave the planner nothing but a scan of the table.
const OLD_CLAIM: &str = "EXPLAIN UPDATE accounts SET lease_owner = $1, lease_expires_at = $2 \
     WHERE id IN (SELECT id FROM accounts \
       WHERE status = 'active' \
         AND (next_sync_at IS NULL OR next_sync_at <= $3) \
         AND (throttled_until IS NULL OR throttled_until <= $3) \
         AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
       ORDER BY next_sync_at NULLS FIRST, id LIMIT $4 \
       FOR UPDATE SKIP LOCKED) \
     RETURNING *";

/// 10,000 accounts as a fleet holds them: due times spread over the interval (half
/// due now), a few never synced, leased, throttled or disabled.
const FLEET: &str = "INSERT INTO accounts \
     (email, kind, credentials, status, next_sync_at, throttled_until, lease_owner, \
      lease_expires_at, created_at, updated_at) \
     SELECT 'user' || g || '@example.com', 'outlook', 'gAAAAA' || repeat('x', 100), \
       CASE WHEN g % 50 = 0 THEN 'disabled' ELSE 'active' END, \
       CASE WHEN g % 97 = 0 THEN NULL ELSE now() + (g - 5000) * interval '30 ms' END, \
       CASE WHEN g % 89 = 0 THEN now() + interval '1 minute' END, \
       CASE WHEN g % 13 = 0 THEN 'w0' END, \
       CASE WHEN g % 13 = 0 THEN now() + interval '5 minutes' END, \
       now(), now() \
     FROM generate_series(1, 10000) AS g";

/// Inserts [`FLEET`] and has the planner look at it.
async fn insert_fleet(conn: &mut PgConnection) {
    sqlx::query(FLEET).execute(&mut *conn).await.unwrap();
    sqlx::query("ANALYZE accounts")
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn claiming_on_postgresql_uses_the_index_not_a_scan_of_accounts() {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    let store = Store::connect(&url).await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    insert_fleet(&mut conn).await;
    let now = Utc::now();

    // The control: on this table the planner scans for the old statement, so the
    // check below can tell an indexed claim from one that is not.
    let old: Vec<(String,)> = sqlx::query_as(OLD_CLAIM)
        .bind("w1")
        .bind(now + Duration::minutes(5))
        .bind(now)
        .bind(64_i64)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let old = old.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
    assert!(old.contains("Seq Scan on accounts"), "{old}");

    for limit in [1, 64, 1000] {
        let plan = store.claim_plan(limit, now).await.unwrap();
        assert!(
            !plan.contains("Seq Scan on accounts"),
            "limit {limit}: the claim scans the table:\n{plan}"
        );
        assert!(
            plan.contains("idx_accounts_claim"),
            "limit {limit}:\n{plan}"
        );
    }

    // And it claims what it should: due, active, unleased, not throttled, the most
    // overdue (never synced) first.
    let (due,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM accounts WHERE status = 'active' \
           AND (next_sync_at IS NULL OR next_sync_at <= $1) \
           AND (throttled_until IS NULL OR throttled_until <= $1) \
           AND (lease_expires_at IS NULL OR lease_expires_at <= $1)",
    )
    .bind(now)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let first = store
        .claim_due_accounts("w2", 1, now, now + Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        first[0].next_sync_at.is_none(),
        "never-synced accounts come first: {first:?}"
    );
    let claimed = store
        .claim_due_accounts("w1", 20_000, now, now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(1 + claimed.len() as i64, due);
    assert!(due > 4000 && due < 5000, "{due}");
    let _ = conn.close().await;
}

#[tokio::test]
async fn claiming_on_sqlite_searches_the_index() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let plan = store.claim_plan(64, Utc::now()).await.unwrap();
    assert!(plan.contains("USING INDEX idx_accounts_claim"), "{plan}");
}

/// A claim and a batch of outcomes sent again and again get a generic plan on
/// PostgreSQL after the first few: planning them at every call cost a fleet 10–15 %
/// of the server's CPU (the claim's limit was a parameter, and the outcomes' arrays
/// were folded into custom plans).
#[tokio::test]
async fn claims_and_batches_of_outcomes_get_a_generic_plan_on_postgresql() {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    let store = Store::connect_with_pool_size(&url, 1).await.unwrap();
    // The fleet's table: on a table of a few rows every plan costs the same.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    insert_fleet(&mut conn).await;
    let _ = conn.close().await;
    let now = Utc::now();
    const ROUNDS: i64 = 12;
    for round in 0..ROUNDS {
        let at = now + Duration::seconds(round);
        let claimed = store
            .claim_due_accounts("w1", 4, at, at + Duration::minutes(5))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 4, "round {round}");
        let finished: Vec<SyncFinish> = claimed
            .iter()
            .map(|a| SyncFinish {
                account_id: a.id,
                outcome: SyncOutcome {
                    status: AccountStatus::Active,
                    error: None,
                    auth_error_code: None,
                    finished_at: at,
                    next_sync_at: Some(at),
                },
                cursors: Vec::new(),
            })
            .collect();
        let recorded = store.finish_syncs("w1", &finished).await.unwrap();
        assert!(recorded.iter().all(Option::is_some), "round {round}");
    }
    let plans = store.prepared_plans().await.unwrap();
    let generic_plans = |needle: &str| {
        let found: Vec<_> = plans
            .iter()
            .filter(|(sql, ..)| sql.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "{needle}: {plans:#?}");
        let (_, generic, custom) = found[0];
        assert_eq!(generic + custom, ROUNDS, "{needle}: {plans:#?}");
        *generic
    };
    // PostgreSQL makes custom plans for the first five executions, then compares.
    assert!(
        generic_plans("FOR UPDATE SKIP LOCKED") >= ROUNDS - 5,
        "the claim: {plans:#?}"
    );
    assert!(
        generic_plans("unnest") >= ROUNDS - 5,
        "the outcomes: {plans:#?}"
    );
}
