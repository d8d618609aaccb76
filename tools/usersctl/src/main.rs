//! Operator CLI over the same store the functions use: create the table,
//! bootstrap admins, issue and revoke tokens, set passwords, manage orgs.
use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use directory::auth;
use directory::domain::orgs::Role;
use directory::domain::tenant::domain_name;
use directory::domain::user::{rules, Group, User};
use directory::oauth;
use directory::store::{
    client, table, DomainAdded, FaultKind, Store, StoreError, TenantOrg, TokenOwner, TokenSpec,
    UniqueField,
};

mod events;
mod iac;

/// Environment: TABLE_NAME (default `users`), DYNAMODB_ENDPOINT (DynamoDB Local),
/// AWS region and credentials as usual.
#[derive(Parser)]
#[command(
    name = "usersctl",
    version,
    about = "Operate the user directory's table"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The DynamoDB table.
    #[command(subcommand)]
    Table(TableCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Change events: their receivers, kept deliveries, the local stream follower.
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// What each function may do to the table (store::permissions) and the
    /// table's schema: what infra/template.yaml must grant and define. Reads
    /// no table.
    Iam {
        /// Machine-readable, for tests/infra.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TableCmd {
    /// Creates the table, its indexes and TTL; on an existing table, adds the
    /// indexes it lacks (a table from before the search index).
    Create,
    /// Recounts the users per id bucket from the users themselves, the
    /// directory's and each org's own (after a restore, or to upgrade a table
    /// whose counts predate the buckets). Run it while nothing else writes
    /// users.
    RebuildCounts,
    /// Merges the copies of the user counts into one item per block (creates
    /// do this on their own; safe at any time).
    CompactCounts,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Creates a user and prints its id.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Group `admin`, staff and superuser.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Succeed without change when the username exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// Sets a user's password, read from standard input.
    SetPassword {
        #[arg(long)]
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Lifts the lock that failed password logins put on a username (any
    /// name, held by a user or not), and forgets its failures.
    Unlock {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Issues a token; prints it as the last line of output.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        read_only: bool,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Store the token given on standard input instead of generating one.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Revokes a token.
    Revoke { token: String },
}

#[derive(Subcommand)]
enum OrgCmd {
    /// Creates an organisation.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Makes every organisation created before SCIM Groups a Group (one pass
    /// over the table; run it once after upgrading; running it again changes
    /// nothing). An org whose name another group holds (caselessly) is
    /// adopted as "<name> (<slug>)".
    Adopt,
    /// Adds a user to an organisation (or changes their role).
    AddMember {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "worker")]
        role: String,
    },
    /// Issues the org's own SCIM token, for its identity provider: it works
    /// only under /api/v1/scim/orgs/<slug>. Prints it as the last line.
    ScimToken {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        read_only: bool,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Creates an OAuth 2.0 client of the org (client credentials, for
    /// Entra ID): prints client_id=… and, last, client_secret=…. Its access
    /// tokens (POST /api/v1/oauth/token) work only under
    /// /api/v1/scim/orgs/<slug>, for an hour. `revoke` and `unlock` act on
    /// an existing client.
    #[command(args_conflicts_with_subcommands = true)]
    OauthClient {
        #[arg(long)]
        slug: Option<String>,
        /// Its access tokens may only read.
        #[arg(long)]
        read_only: bool,
        #[command(subcommand)]
        action: Option<OAuthClientCmd>,
    },
    /// The org's verified domains: the names its identity provider may
    /// provision under its tenant base.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// The role users created under the org's tenant base get (default
    /// worker); its users in no mapped group take it at once.
    DefaultRole {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        role: String,
        /// Seconds to wait before recomputing once more, for requests that
        /// read the old roles just before the change (the longest a SCIM
        /// request runs: 30 s); 0 skips the second pass.
        #[arg(long, default_value_t = SETTLE_SECONDS)]
        settle_seconds: u64,
    },
    /// Maps the org's tenant group named <GROUP> (caseless; it may not be
    /// pushed yet) to a role: a member's role is the highest role among the
    /// mapped groups they are in, or the default role. Recomputes the
    /// group's members now.
    MapGroup {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        role: String,
        /// Seconds to wait before recomputing once more, for requests that
        /// read the old roles just before the change (the longest a SCIM
        /// request runs: 30 s); 0 skips the second pass.
        #[arg(long, default_value_t = SETTLE_SECONDS)]
        settle_seconds: u64,
    },
    /// Drops a group's mapping; its members fall back to their other mapped
    /// groups, or the default role.
    UnmapGroup {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        group: String,
        /// Seconds to wait before recomputing once more, for requests that
        /// read the old roles just before the change (the longest a SCIM
        /// request runs: 30 s); 0 skips the second pass.
        #[arg(long, default_value_t = SETTLE_SECONDS)]
        settle_seconds: u64,
    },
    /// Lists the org's group mappings, one `<group>\t<role>` a line, and
    /// the default role.
    GroupRoles {
        #[arg(long)]
        slug: String,
    },
}

#[derive(Subcommand)]
enum OAuthClientCmd {
    /// Revokes the client: it can no longer get tokens, and the access
    /// tokens it got stop working at once.
    Revoke {
        #[arg(long)]
        client_id: String,
    },
    /// Lifts the lock that failed authentications put on a client id (any
    /// id, held by a client or not), and forgets its failures.
    Unlock {
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
    /// Gives a domain to the org (a domain belongs to one org at most), or
    /// with --any lets the org provision any name nobody holds.
    Add {
        #[arg(long)]
        slug: String,
        #[arg(long, required_unless_present = "any", conflicts_with = "any")]
        domain: Option<String>,
        #[arg(long)]
        any: bool,
    },
    /// Takes a domain from the org, or with --any withdraws --any.
    Remove {
        #[arg(long)]
        slug: String,
        #[arg(long, required_unless_present = "any", conflicts_with = "any")]
        domain: Option<String>,
        #[arg(long)]
        any: bool,
    },
}

/// A failure worth a message and a non-zero exit.
enum Fail {
    /// Wrong input or a missing record: the message says it all.
    Message(String),
    /// DynamoDB failed; [`describe`] says where and what to do about it.
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

type Outcome = Result<(), Fail>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Iam { json } = cli.command {
        match json {
            true => println!("{:#}", iac::document()),
            false => print!("{}", iac::summary()),
        }
        return ExitCode::SUCCESS;
    }
    let store = Store::from_env().await;
    match run(&store, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            let message = match fail {
                Fail::Message(message) => message,
                Fail::Store(err) => describe(&err, &Target::of(&store)),
            };
            eprintln!("usersctl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The DynamoDB a command talks to, as the operator configured it.
struct Target {
    /// DYNAMODB_ENDPOINT (DynamoDB Local, most likely), if set.
    endpoint: Option<String>,
    region: Option<String>,
    table: String,
}

impl Target {
    fn of(store: &Store) -> Target {
        Target {
            endpoint: client::endpoint(),
            region: store.client().config().region().map(|r| r.to_string()),
            table: store.table().to_string(),
        }
    }

    /// `DynamoDB at <endpoint>` or `DynamoDB in <region>`.
    fn place(&self) -> String {
        match (&self.endpoint, &self.region) {
            (Some(endpoint), _) => format!("DynamoDB at {endpoint}"),
            (None, Some(region)) => format!("DynamoDB in {region}"),
            (None, None) => "DynamoDB".to_string(),
        }
    }
}

/// What the SDK says when it has no credentials to sign with (no request is sent).
const NO_CREDENTIALS: &[&str] = &[
    "error occurred while loading credentials",
    "credential provider was not enabled",
];
/// DynamoDB's codes for credentials it does not accept.
const BAD_CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "MissingAuthenticationTokenException",
];
/// A failed connection's cause: the SDK's error chain's words (lower case), in a few words.
const CONNECTION_CAUSES: &[(&str, &str)] = &[
    ("connection refused", "connection refused"),
    ("dns error", "the host name does not resolve"),
    ("failed to lookup address", "the host name does not resolve"),
    ("connection reset", "connection reset"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("certificate", "TLS certificate rejected"),
];

/// The SDK's words for an error without the debug dump it appends to them
/// (`… (ServiceError(ServiceError { source: …, raw: Response { … } }))`).
fn headline(detail: &str) -> &str {
    [
        "ServiceError(",
        "DispatchFailure(",
        "TimeoutError(",
        "ResponseError(",
        "ConstructionFailure(",
    ]
    .iter()
    .filter_map(|variant| detail.find(&format!(" ({variant}")))
    .min()
    .map_or(detail, |end| &detail[..end])
}

/// The first of `words` that `detail` contains, ignoring case.
fn mentions<'a>(detail: &str, words: &[&'a str]) -> Option<&'a str> {
    let detail = detail.to_ascii_lowercase();
    words
        .iter()
        .find(|w| detail.contains(&w.to_ascii_lowercase()))
        .copied()
}

/// One line on what went wrong with DynamoDB and what to do next. The store
/// classifies each failure (`directory::store::classify`), but missing
/// credentials or region stop the SDK before it sends anything (a dispatch
/// failure or a fault), and a missing table or rejected credentials are
/// faults like any other: those are told apart by the SDK's own words.
fn describe(err: &StoreError, target: &Target) -> String {
    let place = target.place();
    let table = &target.table;
    let local = target.endpoint.is_some();
    if !local && target.region.is_none() {
        // Without a region the SDK cannot even tell where DynamoDB is.
        return "no AWS region for DynamoDB: set AWS_REGION \
                (or DYNAMODB_ENDPOINT for DynamoDB Local)"
            .to_string();
    }
    let detail = match err {
        StoreError::Unavailable(u) => &u.detail,
        StoreError::Fault(detail) => detail,
        _ => "",
    };
    if mentions(detail, NO_CREDENTIALS).is_some() {
        let profile = std::env::var("AWS_PROFILE")
            .map(|p| format!(" (profile {p} has none)"))
            .unwrap_or_default();
        return format!(
            "no AWS credentials for {place}{profile}: set AWS_PROFILE to a profile with \
             credentials, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or DYNAMODB_ENDPOINT for DynamoDB Local)"
        );
    }
    match err {
        StoreError::Unavailable(u) => match u.kind {
            FaultKind::Unreachable => {
                let lower = detail.to_ascii_lowercase();
                let cause = CONNECTION_CAUSES
                    .iter()
                    .find(|(words, _)| lower.contains(words))
                    .map_or(headline(detail), |(_, cause)| cause);
                let hint = if local {
                    "is DynamoDB Local running? make dev starts one"
                } else {
                    "check the network and AWS_REGION"
                };
                format!("cannot reach {place}: {cause} ({hint})")
            }
            FaultKind::Timeout => format!(
                "{place} did not answer in time: try again; if it keeps happening, \
                 check that it is up and reachable"
            ),
            FaultKind::Throttled => format!(
                "{place} is throttling requests ({}): try again in a few seconds",
                u.code
            ),
            FaultKind::ServerError => format!(
                "{place} failed to answer ({}): try again in a few seconds",
                u.code
            ),
            FaultKind::Contention => format!(
                "{place}: concurrent writes to the same items kept conflicting ({}): try again",
                u.code
            ),
        },
        StoreError::Fault(detail) => {
            if mentions(detail, &["ResourceNotFoundException"]).is_some() {
                let hint = if local {
                    "run usersctl table create"
                } else {
                    "set TABLE_NAME to the stack's TableName output, or run usersctl table create"
                };
                format!("table {table} does not exist on {place}: {hint}")
            } else if let Some(code) = mentions(detail, BAD_CREDENTIALS) {
                format!(
                    "{place} rejected the AWS credentials ({code}): check AWS_PROFILE, or \
                     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
                )
            } else if mentions(detail, &["AccessDeniedException"]).is_some() {
                format!(
                    "{place} denied access to table {table} (AccessDeniedException): \
                     the AWS identity in use needs DynamoDB permissions on it"
                )
            } else if detail.contains("code: None") {
                // An HTTP error without DynamoDB's error body: something else answers there.
                let status = detail
                    .split_once("StatusCode(")
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or("?", |(status, _)| status);
                format!(
                    "{place} answered HTTP {status}, not as DynamoDB does: \
                     is that the right endpoint?"
                )
            } else {
                format!("{place} refused the request: {}", headline(detail))
            }
        }
        StoreError::Corrupt(what) => {
            format!("malformed item {what} in table {table}: fix or delete it by hand")
        }
        StoreError::Conflict => "the record was changed by another request: try again".into(),
        other => other.to_string(),
    }
}

async fn run(store: &Store, command: Command) -> Outcome {
    match command {
        Command::Events(command) => events::run(store, command).await,
        Command::Table(TableCmd::Create) => {
            let created = table::create_table(store.client(), store.table()).await?;
            if created {
                println!("created table {}", store.table());
            } else {
                println!("table {} already exists", store.table());
                // The stream first: DynamoDB changes a table one update at a
                // time, and an index being filled keeps it busy.
                if table::enable_stream(store.client(), store.table()).await? {
                    println!("turned on the table's stream (new and old images) for change events");
                }
                let indexes = table::add_missing_indexes(store.client(), store.table()).await?;
                for name in indexes.added {
                    println!("added index {name} (DynamoDB fills it from the existing items)");
                }
                for name in indexes.pending {
                    println!(
                        "index {name} not added yet: DynamoDB builds one new index at a time; \
                         run usersctl table create again once the one above is ACTIVE"
                    );
                }
            }
            Ok(())
        }
        Command::Table(TableCmd::RebuildCounts) => {
            let counts = store.counts().rebuild().await?;
            println!(
                "recounted {} users ({} active) in table {}",
                counts.total,
                counts.active,
                store.table()
            );
            Ok(())
        }
        Command::Table(TableCmd::CompactCounts) => {
            store.counts().compact().await;
            println!("compacted the user counts of table {}", store.table());
            Ok(())
        }
        Command::User(UserCmd::Create {
            username,
            email,
            first_name,
            last_name,
            admin,
            password_stdin,
            if_missing,
        }) => {
            let check = |field: &str, problem: Option<&str>| match problem {
                Some(p) => Err(Fail::Message(format!("{field}: {p}"))),
                None => Ok(()),
            };
            check("username", rules::username_error(&username))?;
            check("email", rules::email_error(&email))?;
            check("first-name", rules::name_error(&first_name))?;
            check("last-name", rules::name_error(&last_name))?;
            let password = if password_stdin {
                Some(read_secret()?)
            } else {
                None
            };
            if if_missing {
                if let Some(id) = store
                    .claims()
                    .owner(UniqueField::Username, &username)
                    .await?
                {
                    println!("user {username} already exists (id {id})");
                    return Ok(());
                }
            }
            let mut user = User::new(username);
            user.email = email;
            user.first_name = first_name;
            user.last_name = last_name;
            if admin {
                user.groups = vec![Group::Admin];
                user.is_staff = true;
                user.is_superuser = true;
            } else {
                user.groups = vec![Group::User];
            }
            user.password_hash = password.as_deref().map(auth::hash_password);
            match store.users().create(user).await {
                Ok(user) => {
                    println!("{}", user.id);
                    Ok(())
                }
                Err(StoreError::Taken(field)) => {
                    Err(Fail::Message(format!("{field:?} is already taken")))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::User(UserCmd::SetPassword { username, .. }) => {
            let password = read_secret()?;
            let user = find_user(store, &username).await?;
            let mut changed = user.clone();
            changed.password_hash = Some(auth::hash_password(&password));
            store.users().update(&user, changed).await?;
            println!("password set for {username}");
            Ok(())
        }
        Command::User(UserCmd::Unlock { username }) => unlock(store, &username).await,
        Command::Token(TokenCmd::Create {
            username,
            read_only,
            expires_in_days,
            token_stdin,
        }) => {
            let user = find_user(store, &username).await?;
            let token = if token_stdin {
                let token = read_secret()?;
                if auth::token_user_id(&token) != Some(user.id) {
                    return Err(Fail::Message(format!(
                        "a token for {username} must look like {}.<secret>",
                        user.id
                    )));
                }
                if token.len() < user.id.to_string().len() + 33 {
                    return Err(Fail::Message(
                        "the token's secret must be at least 32 characters".into(),
                    ));
                }
                token
            } else {
                auth::generate_token(user.id)
            };
            let hash = auth::hash_token(&token);
            if store.tokens().get(&hash).await?.is_some() {
                println!("token already stored for {username}");
            } else {
                let spec = TokenSpec {
                    read_only,
                    expires_at: expires_in_days
                        .map(|d| chrono::Utc::now().timestamp() + i64::from(d) * 86_400),
                };
                store.tokens().add(&user, &hash, &spec).await?;
            }
            println!("{token}");
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { token }) => {
            let hash = auth::hash_token(&token);
            let stored = store
                .tokens()
                .get(&hash)
                .await?
                .ok_or_else(|| Fail::Message("no such token".into()))?;
            match stored.owner {
                TokenOwner::User(id) => {
                    let user =
                        store.users().get(id).await?.ok_or_else(|| {
                            Fail::Message("the token's user no longer exists".into())
                        })?;
                    store.tokens().revoke(&user, &hash).await?;
                }
                TokenOwner::Org { slug, .. } => {
                    store.tenants().revoke_token(&slug, &hash).await?;
                }
            }
            println!("token revoked");
            Ok(())
        }
        Command::Iam { .. } => unreachable!("answered before the store is built"),
        Command::Org(OrgCmd::Create { slug, name }) => {
            let valid = !slug.is_empty()
                && slug.len() <= 16
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(Fail::Message(
                    "slug: 1-16 characters of letters, digits, '-' and '_'".into(),
                ));
            }
            match store
                .groups()
                .create_org(&slug, name.as_deref().unwrap_or(&slug))
                .await
            {
                Ok(org) => {
                    println!("{}", org.id);
                    Ok(())
                }
                Err(StoreError::Conflict) => {
                    Err(Fail::Message(format!("org {slug} already exists")))
                }
                // Orgs are SCIM Groups, whose names are unique (caselessly).
                Err(StoreError::Taken(_)) => Err(Fail::Message(format!(
                    "an org (group) named \"{}\" already exists",
                    name.as_deref().unwrap_or(&slug)
                ))),
                Err(e) => Err(e.into()),
            }
        }
        Command::Org(OrgCmd::Adopt) => {
            let orgs = store.groups().orgs_by_scan().await?;
            let (mut adopted, mut refused) = (0, Vec::new());
            for org in &orgs {
                let mut outcome = store.groups().adopt(org, &org.name).await;
                if let Err(StoreError::Taken(_)) = outcome {
                    let name = format!("{} ({})", org.name, org.slug);
                    outcome = store.groups().adopt(org, &name).await;
                }
                match outcome {
                    Ok(Some(group)) => {
                        adopted += 1;
                        println!("{}: group {} named \"{}\"", org.slug, group.id, group.name);
                    }
                    Ok(None) => {}
                    Err(StoreError::Taken(_)) => refused.push(org.slug.clone()),
                    Err(e) => return Err(e.into()),
                }
            }
            println!(
                "{} orgs: {adopted} adopted, {} already groups, {} refused",
                orgs.len(),
                orgs.len() - adopted - refused.len(),
                refused.len()
            );
            if refused.is_empty() {
                Ok(())
            } else {
                Err(Fail::Message(format!(
                    "not adopted, their names are taken: {} (rename the groups \
                     holding them, then run this again)",
                    refused.join(", ")
                )))
            }
        }
        Command::Org(OrgCmd::ScimToken {
            slug,
            read_only,
            expires_in_days,
        }) => {
            let org = tenant(store, &slug).await?;
            let spec = TokenSpec {
                read_only,
                expires_at: expires_in_days
                    .map(|d| chrono::Utc::now().timestamp() + i64::from(d) * 86_400),
            };
            let token = auth::mint_tenant_token(store, &org, &spec).await?;
            println!("SCIM base: /api/v1/scim/orgs/{slug}");
            println!("{token}");
            Ok(())
        }
        Command::Org(OrgCmd::OauthClient {
            slug,
            read_only,
            action: None,
        }) => {
            let slug = slug.ok_or_else(|| Fail::Message("--slug is required".into()))?;
            let org = tenant(store, &slug).await?;
            let (client_id, client_secret) = oauth::new_client(store, &org, read_only).await?;
            println!("token endpoint: /api/v1/oauth/token");
            println!("SCIM base: /api/v1/scim/orgs/{slug}");
            println!("client_id={client_id}");
            println!("client_secret={client_secret}");
            Ok(())
        }
        Command::Org(OrgCmd::OauthClient {
            action: Some(OAuthClientCmd::Revoke { client_id }),
            ..
        }) => {
            if store.oauth_clients().revoke(&client_id).await? {
                println!("client {client_id} revoked");
                Ok(())
            } else {
                Err(Fail::Message(format!("no OAuth client {client_id}")))
            }
        }
        Command::Org(OrgCmd::OauthClient {
            action: Some(OAuthClientCmd::Unlock { client_id }),
            ..
        }) => {
            if !oauth::possible_client_id(&client_id) {
                return Err(Fail::Message(format!("{client_id} is no client id")));
            }
            if store.oauth_clients().unlock(&client_id).await? {
                println!("{client_id} unlocked");
            } else {
                println!("{client_id} was not locked");
            }
            Ok(())
        }
        Command::Org(OrgCmd::Domain(DomainCmd::Add { slug, domain, any })) => {
            let org = tenant(store, &slug).await?;
            let Some(raw) = domain.filter(|_| !any) else {
                store.tenants().set_any_domain(&org, true).await?;
                println!("{slug} may provision any name nobody holds");
                return Ok(());
            };
            let domain = domain_name(&raw)
                .ok_or_else(|| Fail::Message(format!("domain: \"{raw}\" is no DNS name")))?;
            match store.tenants().add_domain(&org, &domain).await? {
                DomainAdded::Added => println!("{domain} is a domain of {slug}"),
                DomainAdded::Already => println!("{domain} already is a domain of {slug}"),
                DomainAdded::TakenBy(_) => {
                    return Err(Fail::Message(format!(
                        "{domain} belongs to another organization"
                    )))
                }
            }
            Ok(())
        }
        Command::Org(OrgCmd::Domain(DomainCmd::Remove { slug, domain, any })) => {
            let org = tenant(store, &slug).await?;
            let Some(raw) = domain.filter(|_| !any) else {
                store.tenants().set_any_domain(&org, false).await?;
                println!("{slug} may provision only names in its domains");
                return Ok(());
            };
            let domain = domain_name(&raw)
                .ok_or_else(|| Fail::Message(format!("domain: \"{raw}\" is no DNS name")))?;
            if store.tenants().remove_domain(&org, &domain).await? {
                println!("{domain} is no longer a domain of {slug}");
                Ok(())
            } else {
                Err(Fail::Message(format!("{domain} is not a domain of {slug}")))
            }
        }
        Command::Org(OrgCmd::DefaultRole {
            slug,
            role,
            settle_seconds,
        }) => {
            let parsed = Role::parse(&role).ok_or_else(|| {
                Fail::Message("role: one of owner, maintainer, supervisor, worker".into())
            })?;
            let org = tenant(store, &slug).await?;
            store.tenants().set_default_role(&org, parsed).await?;
            let org = tenant(store, &slug).await?;
            let moved = store.tenant_groups().recompute_all(&org).await?;
            println!("users created under {slug}'s SCIM base become {role}s");
            println!("{moved} member(s) changed role");
            if settle(settle_seconds).await {
                let moved = store.tenant_groups().recompute_all(&org).await?;
                println!("{moved} more member(s) changed role");
            }
            Ok(())
        }
        Command::Org(OrgCmd::MapGroup {
            slug,
            group,
            role,
            settle_seconds,
        }) => {
            let parsed = Role::parse(&role).ok_or_else(|| {
                Fail::Message("role: one of owner, maintainer, supervisor, worker".into())
            })?;
            map_group(store, &slug, &group, Some(parsed), settle_seconds).await
        }
        Command::Org(OrgCmd::UnmapGroup {
            slug,
            group,
            settle_seconds,
        }) => map_group(store, &slug, &group, None, settle_seconds).await,
        Command::Org(OrgCmd::GroupRoles { slug }) => {
            let org = tenant(store, &slug).await?;
            for (group, role) in org.roles.entries() {
                println!("{group}\t{}", role.name());
            }
            println!("default\t{}", org.default_role.name());
            Ok(())
        }
        Command::Org(OrgCmd::AddMember {
            slug,
            username,
            role,
        }) => {
            const ROLES: [&str; 4] = ["owner", "maintainer", "supervisor", "worker"];
            if !ROLES.contains(&role.as_str()) {
                return Err(Fail::Message(format!("role: one of {}", ROLES.join(", "))));
            }
            let org = store
                .groups()
                .org(&slug)
                .await?
                .ok_or_else(|| Fail::Message(format!("no org {slug}")))?;
            let user = find_user(store, &username).await?;
            store.groups().add_member(&org, &user, &role).await?;
            println!("{username} is a {role} of {slug}");
            Ok(())
        }
    }
}

/// Clears the failed logins on record for `username`: on the claim of the
/// user who holds it, or by deleting the tracker of a name nobody holds.
async fn unlock(store: &Store, username: &str) -> Outcome {
    if !table::fits(username) || !table::fits(&rules::fold(username)) {
        return Err(Fail::Message(format!(
            "username: longer than any name can be ({} bytes at most)",
            table::MAX_KEY_VALUE_BYTES
        )));
    }
    let claim = store.logins().claim(username).await?;
    let message = match claim.owner {
        Some(id) if claim.failures == 0 && claim.failed_at.is_none() => {
            format!("no failed logins on record for {username} (user {id})")
        }
        Some(id) => {
            if store.logins().clear_failures(username).await? {
                format!(
                    "unlocked {username} (user {id}): {} failed logins forgotten",
                    claim.failures
                )
            } else {
                // The user was deleted between the read and the write; a
                // tracker, if one appeared since, is handled by running again.
                format!("{username} is no longer held by user {id}: run unlock again")
            }
        }
        None => {
            if store.logins().forget_tracker(username).await? {
                format!(
                    "unlocked {username} (no such user): {} failed logins forgotten",
                    claim.failures
                )
            } else {
                format!("no failed logins on record for {username} (no such user)")
            }
        }
    };
    println!("{message}");
    Ok(())
}

/// The org of `slug`, as a tenant.
async fn tenant(store: &Store, slug: &str) -> Result<TenantOrg, Fail> {
    store
        .tenants()
        .get(slug)
        .await?
        .ok_or_else(|| Fail::Message(format!("no org {slug}")))
}

async fn find_user(store: &Store, username: &str) -> Result<User, Fail> {
    store
        .claims()
        .user(UniqueField::Username, username)
        .await?
        .ok_or_else(|| Fail::Message(format!("no user {username}")))
}

/// One line from standard input, without its line ending; never empty.
fn read_secret() -> Result<String, Fail> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Fail::Message(format!("cannot read standard input: {e}")))?;
    let secret = input.lines().next().unwrap_or_default().to_string();
    if secret.is_empty() {
        return Err(Fail::Message("standard input is empty".into()));
    }
    Ok(secret)
}

/// Sets (or drops) a group's role mapping on the org item, then recomputes
/// the group's members from the mapping just stored.
async fn map_group(
    store: &Store,
    slug: &str,
    group: &str,
    role: Option<Role>,
    settle_seconds: u64,
) -> Result<(), Fail> {
    let org = tenant(store, slug).await?;
    store.tenants().map_group(&org, group, role).await?;
    let org = tenant(store, slug).await?;
    let moved = store.tenant_groups().recompute(&org, group).await?;
    match role {
        Some(role) => println!("group \"{group}\" of {slug} gives {}", role.name()),
        None => println!("group \"{group}\" of {slug} gives no role"),
    }
    println!("{moved} member(s) changed role");
    if settle(settle_seconds).await {
        let moved = store.tenant_groups().recompute(&org, group).await?;
        println!("{moved} more member(s) changed role");
    }
    Ok(())
}

/// How long a role change waits before its second pass: a member change
/// that read the old roles just before the change ends within its request
/// (the API's 30 s at most), and may then have written the old role.
const SETTLE_SECONDS: u64 = 30;

/// Waits `seconds` (saying so) before a second pass; false for 0.
async fn settle(seconds: u64) -> bool {
    if seconds == 0 {
        return false;
    }
    eprintln!("waiting {seconds} s for requests that read the old roles, then recomputing");
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    true
}
