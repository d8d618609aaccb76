//! IAM in the tests: an SDK interceptor that holds a DynamoDB client to one
//! function's declaration (`directory::store::permissions`) and fails every
//! call its role would be refused, the way IAM authorises it: each key of a
//! batch read and each item of a transaction by its own action, resource,
//! partition key and (for the scoped grants) the attributes it names.
//!
//! The handler under test cannot tell: a refused call is a failed DynamoDB
//! call, as in production. The test asks [`Guard::violations`] what was refused.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{Builder, ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::scan::ScanInput;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use directory::store::permissions::{expression_attributes, Access, Action, Function, Partition};
use directory::store::table;

type Item = HashMap<String, AttributeValue>;
type Names = Option<HashMap<String, String>>;

/// What a guarded client was allowed to do: an action, on `table` or
/// `index/<name>`, on a partition (`None`: no partition key, or one of no
/// known partition).
pub type Use = (Action, String, Option<Partition>);

/// One function's declaration, enforced on a client. Cheap to clone; every
/// clone sees the same log.
#[derive(Clone, Debug)]
pub struct Guard {
    function: Function,
    table: String,
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    violations: Vec<String>,
    used: BTreeSet<Use>,
}

impl Guard {
    pub fn new(function: Function, table: &str) -> Guard {
        Guard {
            function,
            table: table.to_string(),
            log: Arc::default(),
        }
    }

    /// The declaration of binary `name`.
    pub fn for_binary(name: &str, table: &str) -> Guard {
        let function = Function::named(name).unwrap_or_else(|| panic!("{name} is not declared"));
        Guard::new(*function, table)
    }

    /// The declaration it holds the client to.
    pub fn function(&self) -> &Function {
        &self.function
    }

    pub fn install(&self, builder: Builder) -> Builder {
        builder.interceptor(self.clone())
    }

    /// Every call refused so far, with why.
    pub fn violations(&self) -> Vec<String> {
        self.log().violations.clone()
    }

    /// Every (action, resource, partition) allowed so far.
    pub fn used(&self) -> BTreeSet<Use> {
        self.log().used.clone()
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks one operation; on a violation, logs it and fails the call.
    fn check(&self, operation: &str, input: &Input) -> Result<(), String> {
        let accesses = accesses(input).ok_or_else(|| {
            format!(
                "{}: {operation} is not an operation any function is declared for",
                self.function.name
            )
        })?;
        let mut refused = Vec::new();
        let mut used = Vec::new();
        for (table, access) in accesses {
            if table != self.table {
                refused.push(format!(
                    "{}: {operation} on table {table:?}, not the function's table",
                    self.function.name
                ));
                continue;
            }
            match self.function.check(&access) {
                Ok(()) => used.push((
                    access.action,
                    access
                        .index
                        .as_ref()
                        .map_or("table".to_string(), |i| format!("index/{i}")),
                    access.partition_key.as_deref().and_then(Partition::of),
                )),
                Err(why) => refused.push(format!("{operation}: {why}")),
            }
        }
        let mut log = self.log();
        log.used.extend(used);
        if refused.is_empty() {
            return Ok(());
        }
        log.violations.extend(refused.iter().cloned());
        Err(refused.join("; "))
    }
}

impl Intercept for Guard {
    fn name(&self) -> &'static str {
        "IamGuard"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("an operation", |m| m.name())
            .to_string();
        self.check(&operation, context.input())
            .map_err(|why| format!("IAM would refuse this: {why}").into())
    }
}

/// Each item access of one operation, with its table; `None` for an
/// operation this check does not know (no function may use it).
fn accesses(input: &Input) -> Option<Vec<(String, Access)>> {
    if let Some(get) = input.downcast_ref::<GetItemInput>() {
        let access = read(
            Action::GetItem,
            get.key(),
            get.projection_expression(),
            names(get.expression_attribute_names()),
        );
        return Some(vec![(table(get.table_name()), access)]);
    }
    if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
        let mut all = Vec::new();
        for (table, request) in batch.request_items().into_iter().flatten() {
            let names = names(request.expression_attribute_names());
            for key in request.keys() {
                let access = read(
                    Action::BatchGetItem,
                    Some(key),
                    request.projection_expression(),
                    names.clone(),
                );
                all.push((table.clone(), access));
            }
        }
        return Some(all);
    }
    if let Some(get) = input.downcast_ref::<TransactGetItemsInput>() {
        let all = get
            .transact_items()
            .iter()
            .filter_map(|item| item.get())
            .map(|g| {
                let names = names(g.expression_attribute_names());
                (
                    g.table_name().to_string(),
                    read(
                        Action::GetItem,
                        Some(g.key()),
                        g.projection_expression(),
                        names,
                    ),
                )
            })
            .collect();
        return Some(all);
    }
    if let Some(query) = input.downcast_ref::<QueryInput>() {
        let names = names(query.expression_attribute_names());
        let hash_key = if query.index_name().is_some() {
            table::GSI1_PK
        } else {
            table::PK
        };
        let partition_key = query.key_condition_expression().and_then(|condition| {
            equality_value(
                condition,
                hash_key,
                &names,
                query.expression_attribute_values(),
            )
        });
        let access = Access {
            action: Action::Query,
            index: query.index_name().map(str::to_string),
            partition_key,
            attributes: query
                .projection_expression()
                .map(|p| expression_attributes(p, resolve(&names))),
            return_values: None,
        };
        return Some(vec![(table(query.table_name()), access)]);
    }
    if let Some(scan) = input.downcast_ref::<ScanInput>() {
        let access = Access {
            action: Action::Scan,
            index: scan.index_name().map(str::to_string),
            partition_key: None,
            attributes: None,
            return_values: None,
        };
        return Some(vec![(table(scan.table_name()), access)]);
    }
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        let access = write(
            Action::PutItem,
            put.item(),
            &[put.condition_expression()],
            names(put.expression_attribute_names()),
            put.return_values().map(|r| r.as_str()),
        );
        return Some(vec![(table(put.table_name()), access)]);
    }
    if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
        let access = write(
            Action::UpdateItem,
            update.key(),
            &[update.update_expression(), update.condition_expression()],
            names(update.expression_attribute_names()),
            update.return_values().map(|r| r.as_str()),
        );
        return Some(vec![(table(update.table_name()), access)]);
    }
    if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
        let access = write(
            Action::DeleteItem,
            delete.key(),
            &[delete.condition_expression()],
            names(delete.expression_attribute_names()),
            delete.return_values().map(|r| r.as_str()),
        );
        return Some(vec![(table(delete.table_name()), access)]);
    }
    if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
        // IAM authorises each item by its own action: there is no
        // TransactWriteItems permission to hold.
        let mut all = Vec::new();
        for item in transaction.transact_items() {
            if let Some(put) = item.put() {
                let n = names(put.expression_attribute_names());
                let access = write(
                    Action::PutItem,
                    Some(put.item()),
                    &[put.condition_expression()],
                    n,
                    None,
                );
                all.push((put.table_name().to_string(), access));
            }
            if let Some(update) = item.update() {
                let n = names(update.expression_attribute_names());
                let expressions = [
                    Some(update.update_expression()),
                    update.condition_expression(),
                ];
                let access = write(
                    Action::UpdateItem,
                    Some(update.key()),
                    &expressions,
                    n,
                    None,
                );
                all.push((update.table_name().to_string(), access));
            }
            if let Some(delete) = item.delete() {
                let n = names(delete.expression_attribute_names());
                let access = write(
                    Action::DeleteItem,
                    Some(delete.key()),
                    &[delete.condition_expression()],
                    n,
                    None,
                );
                all.push((delete.table_name().to_string(), access));
            }
            if let Some(check) = item.condition_check() {
                let n = names(check.expression_attribute_names());
                let expressions = [Some(check.condition_expression())];
                let access = write(
                    Action::ConditionCheckItem,
                    Some(check.key()),
                    &expressions,
                    n,
                    None,
                );
                all.push((check.table_name().to_string(), access));
            }
        }
        return Some(all);
    }
    if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
        let mut all = Vec::new();
        for (table, requests) in batch.request_items().into_iter().flatten() {
            for request in requests {
                let key = request
                    .put_request()
                    .map(|p| p.item())
                    .or_else(|| request.delete_request().map(|d| d.key()));
                all.push((
                    table.clone(),
                    write(Action::BatchWriteItem, key, &[], None, None),
                ));
            }
        }
        return Some(all);
    }
    None
}

fn table(name: Option<&str>) -> String {
    name.unwrap_or_default().to_string()
}

fn names(names: Option<&HashMap<String, String>>) -> Names {
    names.cloned()
}

fn resolve(names: &Names) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| names.as_ref()?.get(name).cloned()
}

fn partition_key(key: Option<&Item>) -> Option<String> {
    key?.get(table::PK)?.as_s().ok().cloned()
}

/// A read of one item: its partition; the attributes its projection names
/// (`None`, all of them, without one).
fn read(action: Action, key: Option<&Item>, projection: Option<&str>, names: Names) -> Access {
    Access {
        action,
        index: None,
        partition_key: partition_key(key),
        attributes: projection.map(|p| {
            let mut named = expression_attributes(p, resolve(&names));
            named.extend(key.into_iter().flat_map(|k| k.keys().cloned()));
            named
        }),
        return_values: None,
    }
}

/// A write of one item: its partition; the attributes of its key or item and
/// of its expressions (IAM counts those a condition tests as well).
fn write(
    action: Action,
    key_or_item: Option<&Item>,
    expressions: &[Option<&str>],
    names: Names,
    return_values: Option<&str>,
) -> Access {
    let mut attributes: BTreeSet<String> = key_or_item
        .into_iter()
        .flat_map(|k| k.keys().cloned())
        .collect();
    for expression in expressions.iter().flatten() {
        attributes.extend(expression_attributes(expression, resolve(&names)));
    }
    Access {
        action,
        index: None,
        partition_key: partition_key(key_or_item),
        attributes: Some(attributes),
        return_values: return_values.map(str::to_string),
    }
}

/// The value a key condition sets `attribute` equal to (`pk = :p`, `#k = :p`).
fn equality_value(
    condition: &str,
    attribute: &str,
    names: &Names,
    values: Option<&HashMap<String, AttributeValue>>,
) -> Option<String> {
    let resolve = resolve(names);
    condition
        .split(" AND ")
        .chain(condition.split(" and "))
        .find_map(|term| {
            let (lhs, rhs) = term
                .trim_matches(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .split_once('=')?;
            let (lhs, rhs) = (lhs.trim(), rhs.trim());
            let name = if lhs.starts_with('#') {
                resolve(lhs)?
            } else {
                lhs.to_string()
            };
            if name != attribute || !rhs.starts_with(':') {
                return None;
            }
            values?.get(rhs)?.as_s().ok().cloned()
        })
}
