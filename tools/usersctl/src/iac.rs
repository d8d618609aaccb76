//! `usersctl iam`: what the code needs from its deployment, for the template
//! check (tests/infra) to compare `infra/template.yaml` with. Nothing here
//! talks to DynamoDB.
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::types::{KeySchemaElement, Projection};
use aws_sdk_dynamodb::{Client, Config};
use directory::store::permissions::{self, FUNCTIONS};
use directory::store::{client, table, REQUEST_BUDGET};
use serde_json::{json, Value};

/// Everything tests/infra checks the template against, as JSON:
/// - `functions`: each function's grants (store::permissions), the shared
///   authentication grants included;
/// - `table`: the CreateTable request `usersctl table create` sends and the
///   TTL it sets, in the template's property names;
/// - `request_budget_seconds`: the most a request waits on DynamoDB;
/// - `function_request_budget_seconds`: the same per function (a bulk
///   request has a budget of its own), which its Timeout must outlast.
pub fn document() -> Value {
    let budgets: serde_json::Map<String, Value> = FUNCTIONS
        .iter()
        .map(|f| {
            let secs = client::request_budget_of(f.name).as_secs_f64();
            (f.name.to_string(), json!(secs))
        })
        .collect();
    json!({
        "functions": permissions::to_json(),
        "table": table(),
        "request_budget_seconds": REQUEST_BUDGET.as_secs_f64(),
        "function_request_budget_seconds": budgets,
    })
}

/// The grants of every function, one line each, for a person.
pub fn summary() -> String {
    let mut out = String::new();
    for function in FUNCTIONS {
        out.push_str(&format!("{}\n", function.name));
        for grant in function.all_grants() {
            let actions: Vec<String> = grant.actions.iter().map(|a| a.iam()).collect();
            out.push_str(&format!(
                "  {} on {}",
                actions.join(", "),
                grant.resource.describe()
            ));
            if let Some(partitions) = grant.partitions {
                let patterns: Vec<String> = partitions.iter().map(|p| p.leading_keys()).collect();
                out.push_str(&format!("; LeadingKeys {}", patterns.join(" ")));
            }
            if let Some(attributes) = grant.attributes {
                out.push_str(&format!("; Attributes {}", attributes.join(" ")));
            }
            if grant.returns_nothing {
                out.push_str("; ReturnValues NONE");
            }
            out.push('\n');
        }
        for grant in function.service_grants() {
            out.push_str(&format!("  {} on {}\n", grant.action, grant.resource));
        }
    }
    out
}

/// The table as `table::table_definition` builds its CreateTable request,
/// read from a client that never sends anything.
fn table() -> Value {
    let offline = Client::from_conf(
        Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .build(),
    );
    let request = table::table_definition(&offline, "users");
    let input = request.as_input();
    let key_schema = |elements: &[KeySchemaElement]| -> Vec<Value> {
        elements
            .iter()
            .map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
            .collect()
    };
    let projection = |p: Option<&Projection>| {
        p.map(|p| {
            json!({
                "ProjectionType": p.projection_type().map(|t| t.as_str()),
                "NonKeyAttributes": p.non_key_attributes(),
            })
        })
    };
    let ttl = table::time_to_live();
    json!({
        "BillingMode": input.get_billing_mode().as_ref().map(|b| b.as_str()),
        "AttributeDefinitions": input.get_attribute_definitions().iter().flatten().map(|a| json!({
            "AttributeName": a.attribute_name(),
            "AttributeType": a.attribute_type().as_str(),
        })).collect::<Vec<_>>(),
        "KeySchema": key_schema(input.get_key_schema().as_deref().unwrap_or_default()),
        "GlobalSecondaryIndexes": input.get_global_secondary_indexes().iter().flatten().map(|g| json!({
            "IndexName": g.index_name(),
            "KeySchema": key_schema(g.key_schema()),
            "Projection": projection(g.projection()),
        })).collect::<Vec<_>>(),
        "TimeToLiveSpecification": {"AttributeName": ttl.attribute_name(), "Enabled": ttl.enabled()},
        "StreamSpecification": input.get_stream_specification().as_ref().map(|s| json!({
            "StreamViewType": s.stream_view_type().map(|v| v.as_str()),
        })),
    })
}
