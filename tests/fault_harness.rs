//! The fault harness itself (`directory_tests::faults`): each fault reaches the
//! SDK as the real service's failure would, and `classify` sorts it as the
//! store expects. Raw SDK calls only, so these tests do not depend on the store.
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use directory::http::Profile;
use directory::store::{classify, Budget, FaultKind, StoreError, Unavailable};
use directory_tests::faults::{Call, Fault, Faults};
use directory_tests::TestTable;

/// Tight limits, so that a hang costs a test well under a second.
fn tight() -> Budget {
    Budget {
        attempt: Duration::from_millis(200),
        operation: Duration::from_millis(600),
        request: Duration::from_secs(2),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..Budget::LAMBDA
    }
}

async fn table() -> (TestTable, Faults) {
    TestTable::faulty(Profile::Odm, tight()).await
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

async fn put_item(t: &TestTable, pk: &str) -> Result<PutItemOutput, SdkError<PutItemError>> {
    t.store
        .client()
        .put_item()
        .table_name(t.store.table())
        .item("pk", s(pk))
        .item("sk", s("X"))
        .send()
        .await
}

async fn put(t: &TestTable, pk: &str) -> Result<(), StoreError> {
    put_item(t, pk).await.map(drop).map_err(|e| classify(&e))
}

async fn get_item(t: &TestTable, pk: &str) -> Result<GetItemOutput, SdkError<GetItemError>> {
    t.store
        .client()
        .get_item()
        .table_name(t.store.table())
        .key("pk", s(pk))
        .key("sk", s("X"))
        .consistent_read(true)
        .send()
        .await
}

/// Item `pk`'s counter `n`.
async fn get(t: &TestTable, pk: &str) -> Result<Option<AttributeValue>, StoreError> {
    get_item(t, pk)
        .await
        .map(|out| out.item().and_then(|i| i.get("n")).cloned())
        .map_err(|e| classify(&e))
}

/// A transaction that adds 1 to `n` on each of `pks`.
async fn bump(
    t: &TestTable,
    pks: &[&str],
    token: Option<&str>,
) -> Result<TransactWriteItemsOutput, SdkError<TransactWriteItemsError>> {
    let items = pks.iter().map(|pk| {
        let update = Update::builder()
            .table_name(t.store.table())
            .key("pk", s(pk))
            .key("sk", s("X"))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .unwrap();
        TransactWriteItem::builder().update(update).build()
    });
    t.store
        .client()
        .transact_write_items()
        .set_transact_items(Some(items.collect()))
        .set_client_request_token(token.map(str::to_string))
        .send()
        .await
}

/// The codes of a cancelled transaction's reasons.
fn reasons(err: &SdkError<TransactWriteItemsError>) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or_default().to_string())
            .collect(),
        _ => panic!("not a cancelled transaction: {err:?}"),
    }
}

/// (attempt, fault) of every attempt of operation `k`.
fn attempts(log: &[Call], k: usize) -> Vec<(u32, Option<Fault>)> {
    log.iter()
        .filter(|c| c.operation == k)
        .map(|c| (c.attempt, c.fault))
        .collect()
}

fn n(value: u32) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn unavailable(kind: FaultKind, code: &str) -> StoreError {
    StoreError::Unavailable(Unavailable::new(kind, code, ""))
}

/// Compares kind and code, not the operator-facing detail.
fn without_detail(err: StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(u) => unavailable(u.kind, &u.code),
        other => other,
    }
}

#[tokio::test]
async fn persistent_faults_exhaust_the_retries_and_classify() {
    let (t, faults) = table().await;
    let cases = [
        (
            Fault::Throttling,
            FaultKind::Throttled,
            "ThrottlingException",
        ),
        (
            Fault::ProvisionedThroughputExceeded,
            FaultKind::Throttled,
            "ProvisionedThroughputExceededException",
        ),
        (
            Fault::RequestLimitExceeded,
            FaultKind::Throttled,
            "RequestLimitExceeded",
        ),
        (
            Fault::InternalServerError,
            FaultKind::ServerError,
            "InternalServerError",
        ),
        (
            Fault::ApplyThenFail,
            FaultKind::ServerError,
            "InternalServerError",
        ),
        (
            Fault::ConnectionRefused,
            FaultKind::Unreachable,
            "DispatchFailure",
        ),
        // Outside a transaction these are throttling, as on the real service.
        (
            Fault::TransactionThrottled,
            FaultKind::Throttled,
            "ThrottlingException",
        ),
        (
            Fault::TransactionConflict,
            FaultKind::Throttled,
            "ThrottlingException",
        ),
    ];
    for (fault, kind, code) in cases {
        faults.reset();
        faults.fail_from(1, fault);
        let err = get_item(&t, "a").await.expect_err("fails");
        if let Some(service) = err.as_service_error() {
            assert_eq!(typed(service), code, "{fault:?}: the SDK's typed error");
        }
        assert_eq!(
            without_detail(classify(&err)),
            unavailable(kind, code),
            "{fault:?}"
        );
        // The SDK retried it to its limit.
        let tried = attempts(&faults.log(), 1);
        assert_eq!(tried.len(), 3, "{fault:?}: {tried:?}");
        assert!(tried.iter().all(|(_, f)| *f == Some(fault)));
    }

    // A single-item write on an item a transaction holds: not retried by the SDK.
    faults.reset();
    faults.fail_from(1, Fault::TransactionConflict);
    let err = put_item(&t, "a").await.expect_err("fails");
    assert!(matches!(
        err.as_service_error(),
        Some(PutItemError::TransactionConflictException(_))
    ));
    assert_eq!(
        without_detail(classify(&err)),
        unavailable(FaultKind::Contention, "TransactionConflictException")
    );
    assert_eq!(faults.log().len(), 1);
}

/// The variant the SDK parsed a GetItem error into.
fn typed(err: &GetItemError) -> &'static str {
    match err {
        GetItemError::ThrottlingException(_) => "ThrottlingException",
        GetItemError::ProvisionedThroughputExceededException(_) => {
            "ProvisionedThroughputExceededException"
        }
        GetItemError::RequestLimitExceeded(_) => "RequestLimitExceeded",
        GetItemError::InternalServerError(_) => "InternalServerError",
        _ => "another error",
    }
}

#[tokio::test]
async fn a_hang_ends_within_the_operation_timeout() {
    let (t, faults) = table().await;
    faults.fail_from(1, Fault::Hang);
    let started = Instant::now();
    let err = get(&t, "a").await.expect_err("times out");
    let took = started.elapsed();
    assert_eq!(
        without_detail(err),
        unavailable(FaultKind::Timeout, "Timeout")
    );
    assert!(
        took < tight().operation + Duration::from_millis(250),
        "took {took:?}"
    );
    // 200 ms attempts within a 600 ms operation: the third attempt is cut short.
    assert_eq!(faults.operations(), 1);
    assert!(faults.log().len() >= 2, "{:?}", faults.log());
}

#[tokio::test]
async fn transaction_faults_cancel_with_one_reason_per_item() {
    let (t, faults) = table().await;
    for (fault, code) in [
        (Fault::TransactionConflict, "TransactionConflict"),
        (Fault::TransactionThrottled, "ThrottlingError"),
    ] {
        faults.reset();
        faults.fail_from(1, fault);
        let err = bump(&t, &["a", "b", "c"], None)
            .await
            .expect_err("cancelled");
        assert_eq!(reasons(&err), [code; 3], "{fault:?}");
        // A cancellation is the caller's to retry, not the SDK's.
        assert_eq!(faults.log().len(), 1, "{fault:?}");
    }
}

#[tokio::test]
async fn a_transient_fault_is_absorbed_by_the_sdk_retry() {
    let (t, faults) = table().await;
    for fault in [
        Fault::Throttling,
        Fault::ProvisionedThroughputExceeded,
        Fault::RequestLimitExceeded,
        Fault::InternalServerError,
        Fault::TransactionThrottled,
        Fault::Hang,
        Fault::ApplyThenFail,
        Fault::ConnectionRefused,
    ] {
        faults.reset();
        faults.fail_call(1, fault, 1);
        put(&t, "a")
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(
            attempts(&faults.log(), 1),
            [(1, Some(fault)), (2, None)],
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn operations_are_numbered_across_their_attempts() {
    let (t, faults) = table().await;
    faults.fail_call(2, Fault::Throttling, 2);
    for pk in ["a", "b", "c"] {
        put(&t, pk).await.unwrap();
    }
    assert_eq!(faults.operations(), 3);
    let log: Vec<_> = faults
        .log()
        .into_iter()
        .map(|c| (c.operation, c.target, c.attempt, c.fault))
        .collect();
    let put = |k, attempt, fault| (k, "PutItem".to_string(), attempt, fault);
    assert_eq!(
        log,
        [
            put(1, 1, None),
            put(2, 1, Some(Fault::Throttling)),
            put(2, 2, Some(Fault::Throttling)),
            put(2, 3, None),
            put(3, 1, None),
        ]
    );
}

#[tokio::test]
async fn random_faults_repeat_with_the_seed() {
    // Roomy timeouts: on a loaded machine one of tight()'s 200 ms attempts
    // can time out in one run and not the other, which adds a call to one
    // log; only the injected faults may decide the calls here.
    let roomy = Budget {
        attempt: Duration::from_secs(3),
        operation: Duration::from_secs(10),
        request: Duration::from_secs(30),
        ..tight()
    };
    let (t, faults) = TestTable::faulty(Profile::Odm, roomy).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        faults.reset();
        faults.fail_randomly(0.4, &[Fault::Throttling, Fault::InternalServerError], 7);
        for _ in 0..8 {
            let _ = get(&t, "a").await;
        }
        runs.push(faults.log());
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].iter().filter(|c| c.fault.is_some()).count();
    assert!(failed > 0 && failed < runs[0].len(), "{:?}", runs[0]);
}

#[tokio::test]
async fn apply_then_fail_lands_the_write_and_the_retry_succeeds() {
    let (t, faults) = table().await;
    faults.fail_call(1, Fault::ApplyThenFail, 1);
    put(&t, "a").await.expect("the retry succeeds");
    assert_eq!(
        attempts(&faults.log(), 1),
        [(1, Some(Fault::ApplyThenFail)), (2, None)]
    );
    assert!(get_item(&t, "a").await.unwrap().item().is_some());

    // The first attempt did land: a conditional create's retry finds its own item.
    faults.reset();
    faults.fail_call(1, Fault::ApplyThenFail, 1);
    let err = t
        .store
        .client()
        .put_item()
        .table_name(t.store.table())
        .item("pk", s("b"))
        .item("sk", s("X"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .expect_err("the retry's condition fails");
    assert!(matches!(
        err.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    ));
    assert!(get_item(&t, "b").await.unwrap().item().is_some());
}

/// DynamoDB Local honours `ClientRequestToken`: the SDK's retry of a
/// transaction that had landed succeeds without applying it again. Without an
/// explicit token the SDK makes one per operation, so its own retries are
/// idempotent too. A token reused with other parameters is refused.
#[tokio::test]
async fn apply_then_fail_transaction_retries_are_idempotent() {
    let (t, faults) = table().await;
    let token = uuid::Uuid::new_v4().to_string();
    faults.fail_call(1, Fault::ApplyThenFail, 1);
    bump(&t, &["a"], Some(&token))
        .await
        .expect("the retry succeeds");
    assert_eq!(
        attempts(&faults.log(), 1),
        [(1, Some(Fault::ApplyThenFail)), (2, None)]
    );
    assert_eq!(get(&t, "a").await.unwrap(), Some(n(1)));

    // Its own token, made by the SDK once per operation.
    faults.fail_call(3, Fault::ApplyThenFail, 1);
    bump(&t, &["b"], None).await.expect("the retry succeeds");
    assert_eq!(attempts(&faults.log(), 3).len(), 2);
    assert_eq!(get(&t, "b").await.unwrap(), Some(n(1)));

    // The same token again: answered as before, not applied (for ten minutes).
    bump(&t, &["a"], Some(&token)).await.expect("replayed");
    assert_eq!(get(&t, "a").await.unwrap(), Some(n(1)));
    let err = bump(&t, &["b"], Some(&token)).await.expect_err("refused");
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("IdempotentParameterMismatchException")
    );
}

#[tokio::test]
async fn contention_cancels_one_of_two_overlapping_transactions() {
    // A hold the production attempt timeout comfortably allows.
    let (t, faults) = TestTable::faulty(Profile::Odm, Budget::LAMBDA).await;
    let hold = Duration::from_millis(300);
    faults.contention(hold);
    // The second call starts once the first is held, so they always overlap.
    let after_first = || async {
        while faults.log().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };

    let (first, second) = tokio::join!(bump(&t, &["a", "b"], None), async {
        after_first().await;
        bump(&t, &["c", "a"], None).await
    });
    first.expect("the first holds its items");
    let lost = second.expect_err("the second is cancelled");
    // Only the common item conflicts.
    assert_eq!(reasons(&lost), ["None", "TransactionConflict"]);
    assert_eq!(get(&t, "a").await.unwrap(), Some(n(1)));
    assert_eq!(get(&t, "c").await.unwrap(), None);

    // Disjoint items: both go through.
    faults.reset();
    faults.contention(hold);
    let (first, second) = tokio::join!(bump(&t, &["d"], None), async {
        after_first().await;
        bump(&t, &["e"], None).await
    });
    first.expect("disjoint");
    second.expect("disjoint");

    // A single-item write on an item a transaction holds.
    faults.reset();
    faults.contention(hold);
    let (first, second) = tokio::join!(bump(&t, &["f"], None), async {
        after_first().await;
        put(&t, "f").await
    });
    first.expect("the transaction goes through");
    assert_eq!(
        without_detail(second.expect_err("conflicts")),
        unavailable(FaultKind::Contention, "TransactionConflictException")
    );
    let log = faults.log();
    assert_eq!(log.len(), 2, "not retried by the SDK: {log:?}");
    assert_eq!(log[1].fault, Some(Fault::TransactionConflict));
}
