//! What the store keeps about credentials and names, whichever API writes:
//! deactivation revokes, expired token hashes are dropped, the list index
//! holds no secrets, look-alike names share one claim, a request value too
//! long for a key is a miss, not a DynamoDB error, and reads by id and by
//! position find what a full read finds, at the cost they say.
use aws_sdk_dynamodb::types::AttributeValue;
use directory::domain::user::User;
use directory::store::{table, StoreError, TokenSpec, UniqueField};
use directory_tests::TestTable;

fn token_items(items: &[std::collections::HashMap<String, AttributeValue>], user_id: u64) -> usize {
    items
        .iter()
        .filter(|i| i.get("user_id").and_then(|v| v.as_n().ok()) == Some(&user_id.to_string()))
        .count()
}

#[tokio::test]
async fn deactivating_a_user_with_more_tokens_than_a_transaction_holds_revokes_them_all() {
    let table = TestTable::new().await;
    let leaver = table.user("leaver").await;
    table.with_password(&leaver, "hunter2hunter2").await;
    for _ in 0..130 {
        table.token(&leaver).await;
    }
    let before = table.fresh(leaver.id).await;
    assert_eq!(before.token_hashes.len(), 130);
    assert_eq!(
        token_items(&table.items_with_prefix("TOKEN#").await, leaver.id),
        130
    );

    let mut inactive = before.clone();
    inactive.is_active = false;
    table.store.users().update(&before, inactive).await.unwrap();

    let after = table.fresh(leaver.id).await;
    assert!(!after.is_active);
    assert_eq!(after.password_hash, None);
    assert!(after.token_hashes.is_empty() && after.token_expiry.is_empty());
    assert_eq!(
        token_items(&table.items_with_prefix("TOKEN#").await, leaver.id),
        0
    );

    // Reactivation brings nothing back.
    let mut active = after.clone();
    active.is_active = true;
    table.store.users().update(&after, active).await.unwrap();
    let back = table.fresh(leaver.id).await;
    assert!(back.is_active);
    assert_eq!(back.password_hash, None);
    assert!(back.token_hashes.is_empty());
}

#[tokio::test]
async fn expired_token_hashes_leave_the_user_record_on_its_next_write() {
    let table = TestTable::new().await;
    let user = table.user("tokens").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let live = table
        .token_with(
            &user,
            TokenSpec {
                read_only: false,
                expires_at: Some(now + 3600),
            },
        )
        .await;
    table.token(&user).await;
    // Expired by the time it is stored (as one is an hour after it was issued).
    table
        .token_with(
            &user,
            TokenSpec {
                read_only: false,
                expires_at: Some(now - 60),
            },
        )
        .await;
    let before = table.fresh(user.id).await;
    assert_eq!(before.token_hashes.len(), 3);
    assert_eq!(before.token_expiry.len(), 2);

    let mut renamed = before.clone();
    renamed.first_name = "Renamed".into();
    table.store.users().update(&before, renamed).await.unwrap();

    let after = table.fresh(user.id).await;
    assert_eq!(after.token_hashes.len(), 2, "{:?}", after.token_hashes);
    assert!(after
        .token_hashes
        .contains(&directory::auth::hash_token(&live)));
    assert_eq!(after.token_expiry.len(), 1);
    assert_eq!(
        token_items(&table.items_with_prefix("TOKEN#").await, user.id),
        2
    );
}

#[tokio::test]
async fn the_list_index_holds_no_password_or_token_hashes() {
    let table = TestTable::new().await;
    let user = table.user("secretive").await;
    table.with_password(&user, "correct horse").await;
    table.token(&user).await;
    let out = table
        .store
        .client()
        .query()
        .table_name(table.store.table())
        .index_name(table::GSI1)
        .key_condition_expression("gsi1pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(table::USERS_PARTITION.into()))
        .send()
        .await
        .unwrap();
    let item = &out.items()[0];
    for secret in ["password_hash", "token_hashes", "token_expiry"] {
        assert!(!item.contains_key(secret), "GSI1 copies {secret}: {item:?}");
    }
    // What lists show is there.
    let listed = table.store.users().all().await.unwrap();
    assert_eq!(listed[0].username, "secretive");
    assert_eq!(listed[0].email, "secretive@example.org");
}

#[tokio::test]
async fn names_that_fold_together_share_one_claim() {
    let table = TestTable::new().await;
    table.user("straße").await;
    let mut twin = User::new("STRASSE");
    twin.email = "other@example.org".into();
    assert_eq!(
        table.store.users().create(twin).await.unwrap_err(),
        StoreError::Taken(UniqueField::Username)
    );
    // The Kelvin sign folds to `k`: a record stored under it holds `kim`'s claim.
    table
        .store
        .users()
        .create(User::new("\u{212A}im"))
        .await
        .unwrap();
    assert_eq!(
        table
            .store
            .users()
            .create(User::new("kim"))
            .await
            .unwrap_err(),
        StoreError::Taken(UniqueField::Username)
    );
}

#[tokio::test]
async fn a_value_too_long_for_a_key_is_a_miss_not_an_error() {
    let table = TestTable::new().await;
    let long = "a".repeat(3000);
    // Before: DynamoDB refused the key (ValidationException), which became a 500.
    assert_eq!(
        table
            .store
            .claims()
            .owner(UniqueField::Username, &long)
            .await,
        Ok(None)
    );
    assert_eq!(
        table.store.claims().user(UniqueField::Email, &long).await,
        Ok(None)
    );
}

/// The two reads of users by id: `by_ids`, strongly consistent and keyed by
/// id (what a write reads before it changes members), and `by_ids_in_order`,
/// eventually consistent at half the units, in the order asked (the page of
/// a search). Both leave out ids nobody holds and read 100 keys per call.
#[tokio::test]
async fn reads_by_id_find_who_exists_at_the_cost_they_say() {
    let table = TestTable::new().await;
    let ann = table.user("ann").await;
    let gone = table.user("gone").await;
    let cy = table.user("cy").await;
    let users = table.store.users();
    users.delete(&table.fresh(gone.id).await).await.unwrap();

    let strong = table.store.for_request();
    let found = strong
        .users()
        .by_ids(&[cy.id, gone.id, ann.id, ann.id])
        .await
        .unwrap();
    let mut ids: Vec<u64> = found.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, [ann.id, cy.id]);
    assert_eq!(found[&cy.id].username, "cy");
    assert_eq!(strong.metrics().calls(), 1);

    let eventual = table.store.for_request();
    let listed = eventual
        .users()
        .by_ids_in_order(&[cy.id, gone.id, ann.id])
        .await
        .unwrap();
    let order: Vec<u64> = listed.iter().map(|u| u.id).collect();
    assert_eq!(order, [cy.id, ann.id]);
    assert_eq!(eventual.metrics().calls(), 1);
    assert!(strong.metrics().capacity_units() > 0.0);
    assert_eq!(
        2.0 * eventual.metrics().capacity_units(),
        strong.metrics().capacity_units()
    );

    let many = table.store.for_request();
    let span: Vec<u64> = (ann.id..ann.id + 150).collect();
    assert_eq!(many.users().by_ids(&span).await.unwrap().len(), 2);
    assert_eq!(many.metrics().calls(), 2);
}

/// The users a full read lists at positions `k..k+limit`.
fn expected(all: &[User], k: usize, limit: usize, descending: bool, active_only: bool) -> Vec<u64> {
    let mut listed: Vec<&User> = all.iter().filter(|u| !active_only || u.is_active).collect();
    if descending {
        listed.reverse();
    }
    listed.iter().skip(k).take(limit).map(|u| u.id).collect()
}

#[tokio::test]
async fn a_page_at_any_depth_starts_where_a_full_read_says() {
    let table = TestTable::new().await;
    let mut users = Vec::new();
    for i in 0..260 {
        users.push(table.user(&format!("p{i:03}")).await);
    }
    // Gaps and inactive users in several buckets.
    for u in users.iter().filter(|u| u.id % 7 == 0) {
        table
            .store
            .users()
            .delete(&table.fresh(u.id).await)
            .await
            .unwrap();
    }
    for u in users.iter().filter(|u| u.id % 5 == 0 && u.id % 7 != 0) {
        let current = table.fresh(u.id).await;
        let mut inactive = current.clone();
        inactive.is_active = false;
        table
            .store
            .users()
            .update(&current, inactive)
            .await
            .unwrap();
    }
    let all = table.store.users().all().await.unwrap();
    for compacted in [false, true] {
        if compacted {
            table.store.counts().compact().await;
        }
        let dir = table.store.counts().by_bucket().await.unwrap();
        let counts = dir.counts();
        assert_eq!(counts.total as usize, all.len());
        assert_eq!(
            counts.active as usize,
            all.iter().filter(|u| u.is_active).count()
        );
        for descending in [false, true] {
            for active_only in [false, true] {
                let len = if active_only {
                    counts.active
                } else {
                    counts.total
                } as usize;
                for k in [0, 1, 49, 50, 51, 99, 120, len - 10, len - 1, len] {
                    let want = expected(&all, k, 25, descending, active_only);
                    let got: Vec<u64> = table
                        .store
                        .users()
                        .from_position(&dir, k as u64, descending, 25, active_only)
                        .await
                        .unwrap()
                        .iter()
                        .map(|u| u.id)
                        .collect();
                    assert_eq!(got, want, "k={k} desc={descending} active={active_only}");
                }
            }
        }
    }
    // Compacted: one packed item holds the whole block.
    let blocks = table.items_with_prefix("COUNTS").await;
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert!(blocks[0].contains_key("packed"));
}

/// Deletes every item of the `COUNTS` partition.
async fn lose_counts(table: &TestTable) {
    for item in table.items_with_prefix("COUNTS").await {
        table
            .store
            .client()
            .delete_item()
            .table_name(table.store.table())
            .set_key(Some(
                [
                    ("pk".to_string(), item["pk"].clone()),
                    ("sk".to_string(), item["sk"].clone()),
                ]
                .into(),
            ))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn counts_rebuilt_from_the_users_match_them() {
    let table = TestTable::new().await;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(table.user(&format!("r{i}")).await);
    }
    let current = table.fresh(users[3].id).await;
    let mut inactive = current.clone();
    inactive.is_active = false;
    table
        .store
        .users()
        .update(&current, inactive)
        .await
        .unwrap();
    // Counts lost (a table from before the buckets, a partial restore).
    lose_counts(&table).await;
    assert_eq!(table.store.counts().totals().await.unwrap().total, 0);
    let counts = table.store.counts().rebuild().await.unwrap();
    assert_eq!((counts.total, counts.active), (12, 11));
    assert_eq!(table.store.counts().totals().await.unwrap(), counts);
    assert_eq!(table.items_with_prefix("COUNTS").await.len(), 1);
}

/// `usersctl table rebuild-counts` recounts each org's own counts too (what
/// a tenant's `startIndex` pages start from), from its partition of the
/// tenant index, and drops the counts of an org whose users are gone.
#[tokio::test]
async fn tenant_counts_rebuilt_from_the_owned_users_match_them() {
    use directory::auth;
    use directory::store::table;
    let table = TestTable::new().await;
    table
        .store
        .groups()
        .create_org("acme", "Acme")
        .await
        .unwrap();
    let org = table.store.tenants().get("acme").await.unwrap().unwrap();
    table
        .store
        .tenants()
        .set_any_domain(&org, true)
        .await
        .unwrap();
    let spec = TokenSpec {
        read_only: false,
        expires_at: None,
    };
    let token = auth::mint_tenant_token(&table.store, &org, &spec)
        .await
        .unwrap();
    let mut owned = Vec::new();
    for i in 0..3 {
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                      "userName": format!("t{i}"), "active": true});
        let req = directory_tests::scim(
            lambda_http::http::Method::POST,
            "/api/v1/scim/orgs/acme/Users",
            &body,
        )
        .header("authorization", &format!("Bearer {token}"))
        .build();
        let r = table.call(directory::scim::create, req).await;
        let id: u64 = r.expect(201)["id"].as_str().unwrap().parse().unwrap();
        owned.push(id);
    }
    table.user("global").await;
    let current = table.fresh(owned[1]).await;
    let mut inactive = current.clone();
    inactive.is_active = false;
    table
        .store
        .users()
        .update(&current, inactive)
        .await
        .unwrap();
    // Counts lost, and a leftover of an org with no users.
    lose_counts(&table).await;
    let (pk, sk) = table::tenant_count_block(99_999, 0, 1);
    let mut leftover = table::key(pk, sk);
    leftover.insert("t0".into(), table::n(5));
    leftover.insert("a0".into(), table::n(5));
    table
        .store
        .client()
        .put_item()
        .table_name(table.store.table())
        .set_item(Some(leftover))
        .send()
        .await
        .unwrap();
    let counts = table.store.counts().rebuild().await.unwrap();
    assert_eq!((counts.total, counts.active), (4, 3));
    let mine = table
        .store
        .counts()
        .of_tenant(org.id)
        .await
        .unwrap()
        .counts();
    assert_eq!((mine.total, mine.active), (3, 2));
    let gone = table
        .store
        .counts()
        .of_tenant(99_999)
        .await
        .unwrap()
        .counts();
    assert_eq!((gone.total, gone.active), (0, 0));
    // One packed item for the directory, one for the org.
    assert_eq!(table.items_with_prefix("COUNTS").await.len(), 2);
}
