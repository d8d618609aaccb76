//! Operator CLI over the same store the functions use: create the table,
//! bootstrap admins, issue and revoke tokens, set passwords, manage orgs.
use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use directory::auth;
use directory::store::{keys, Store, StoreError, TokenSpec, UniqueField};
use directory::user::{rules, Group, User};

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
}

#[derive(Subcommand)]
enum TableCmd {
    /// Creates the table, its index and TTL (does nothing if it exists).
    Create,
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
    /// Adds a user to an organisation (or changes their role).
    AddMember {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "worker")]
        role: String,
    },
}

/// A failure worth a message and a non-zero exit.
struct Fail(String);

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail(e.to_string())
    }
}

type Outcome = Result<(), Fail>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let store = Store::from_env().await;
    match run(&store, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(message)) => {
            eprintln!("usersctl: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(store: &Store, command: Command) -> Outcome {
    match command {
        Command::Table(TableCmd::Create) => {
            let created = keys::create_table(store.client(), store.table())
                .await
                .map_err(|e| Fail(format!("cannot create table {}: {e}", store.table())))?;
            if created {
                println!("created table {}", store.table());
            } else {
                println!("table {} already exists", store.table());
            }
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
                Some(p) => Err(Fail(format!("{field}: {p}"))),
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
                if let Some(id) = store.claim_owner(UniqueField::Username, &username).await? {
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
            match store.create_user(user).await {
                Ok(user) => {
                    println!("{}", user.id);
                    Ok(())
                }
                Err(StoreError::Taken(field)) => Err(Fail(format!("{field:?} is already taken"))),
                Err(e) => Err(e.into()),
            }
        }
        Command::User(UserCmd::SetPassword { username, .. }) => {
            let password = read_secret()?;
            let user = find_user(store, &username).await?;
            let mut changed = user.clone();
            changed.password_hash = Some(auth::hash_password(&password));
            store.update_user(&user, changed).await?;
            println!("password set for {username}");
            Ok(())
        }
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
                    return Err(Fail(format!(
                        "a token for {username} must look like {}.<secret>",
                        user.id
                    )));
                }
                if token.len() < user.id.to_string().len() + 33 {
                    return Err(Fail(
                        "the token's secret must be at least 32 characters".into(),
                    ));
                }
                token
            } else {
                auth::generate_token(user.id)
            };
            let hash = auth::hash_token(&token);
            if store.get_token(&hash).await?.is_some() {
                println!("token already stored for {username}");
            } else {
                let spec = TokenSpec {
                    read_only,
                    expires_at: expires_in_days
                        .map(|d| chrono::Utc::now().timestamp() + i64::from(d) * 86_400),
                };
                store.add_token(&user, &hash, &spec).await?;
            }
            println!("{token}");
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { token }) => {
            let hash = auth::hash_token(&token);
            let stored = store
                .get_token(&hash)
                .await?
                .ok_or_else(|| Fail("no such token".into()))?;
            let user = store
                .get_user(stored.user_id)
                .await?
                .ok_or_else(|| Fail("the token's user no longer exists".into()))?;
            store.revoke_token(&user, &hash).await?;
            println!("token revoked");
            Ok(())
        }
        Command::Org(OrgCmd::Create { slug, name }) => {
            let valid = !slug.is_empty()
                && slug.len() <= 16
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(Fail(
                    "slug: 1-16 characters of letters, digits, '-' and '_'".into(),
                ));
            }
            match store
                .create_org(&slug, name.as_deref().unwrap_or(&slug))
                .await
            {
                Ok(org) => {
                    println!("{}", org.id);
                    Ok(())
                }
                Err(StoreError::Conflict) => Err(Fail(format!("org {slug} already exists"))),
                Err(e) => Err(e.into()),
            }
        }
        Command::Org(OrgCmd::AddMember {
            slug,
            username,
            role,
        }) => {
            const ROLES: [&str; 4] = ["owner", "maintainer", "supervisor", "worker"];
            if !ROLES.contains(&role.as_str()) {
                return Err(Fail(format!("role: one of {}", ROLES.join(", "))));
            }
            let org = store
                .get_org(&slug)
                .await?
                .ok_or_else(|| Fail(format!("no org {slug}")))?;
            let user = find_user(store, &username).await?;
            store.add_member(&org, &user, &role).await?;
            println!("{username} is a {role} of {slug}");
            Ok(())
        }
    }
}

async fn find_user(store: &Store, username: &str) -> Result<User, Fail> {
    let id = store
        .claim_owner(UniqueField::Username, username)
        .await?
        .ok_or_else(|| Fail(format!("no user {username}")))?;
    store
        .get_user(id)
        .await?
        .ok_or_else(|| Fail(format!("no user {username}")))
}

/// One line from standard input, without its line ending; never empty.
fn read_secret() -> Result<String, Fail> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Fail(format!("cannot read standard input: {e}")))?;
    let secret = input.lines().next().unwrap_or_default().to_string();
    if secret.is_empty() {
        return Err(Fail("standard input is empty".into()));
    }
    Ok(secret)
}
