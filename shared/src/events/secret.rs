//! Where the SET signing key comes from: a secret string given in the
//! environment (`make dev`, tests), or the deployment's Secrets Manager
//! secret, read once per function instance.
//!
//! A read that fails (Secrets Manager down, throttling, a hang, no access)
//! is not cached: the caller gets the error, and the next call reads again.
//! The read is bounded ([`READ_ATTEMPT`], [`READ_OPERATION`]), so a hung
//! Secrets Manager costs an invocation a few seconds, well inside the
//! function's timeout, and the publisher hands the batch back to Lambda
//! instead of timing out.
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use tokio::sync::OnceCell;

use super::key::SigningKey;

/// How long one `GetSecretValue` attempt may take.
pub const READ_ATTEMPT: Duration = Duration::from_secs(1);
/// How long the read may take, the SDK's retries included.
pub const READ_OPERATION: Duration = Duration::from_secs(3);

/// The signing key, derived once from wherever its secret is.
pub struct KeySource {
    origin: Origin,
    key: OnceCell<Arc<SigningKey>>,
}

enum Origin {
    /// The secret itself.
    Secret(String),
    /// A Secrets Manager secret (its ARN).
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Origin::Secret(_) => write!(f, "KeySource::Secret"),
            Origin::SecretsManager { arn, .. } => write!(f, "KeySource::SecretsManager({arn})"),
        }
    }
}

impl KeySource {
    /// The key derived from `secret`.
    pub fn secret(secret: &str) -> KeySource {
        KeySource {
            origin: Origin::Secret(secret.to_string()),
            key: OnceCell::new(),
        }
    }

    /// The key derived from the Secrets Manager secret `arn`, read with the
    /// region, credentials and endpoint of `sdk` and this module's timeouts.
    pub fn secrets_manager(sdk: &aws_config::SdkConfig, arn: &str) -> KeySource {
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(READ_ATTEMPT)
                    .operation_timeout(READ_OPERATION)
                    .build(),
            )
            .build();
        KeySource {
            origin: Origin::SecretsManager {
                client: aws_sdk_secretsmanager::Client::from_conf(config),
                arn: arn.to_string(),
            },
            key: OnceCell::new(),
        }
    }

    /// The key: derived on the first call that succeeds, then the same one.
    /// (The read is boxed: the SDK's future is deep, and the stream
    /// function's handler holds this one inside its own.)
    pub async fn get(&self) -> Result<Arc<SigningKey>, String> {
        self.key
            .get_or_try_init(|| async { Box::pin(self.read()).await.map(Arc::new) })
            .await
            .cloned()
    }

    async fn read(&self) -> Result<SigningKey, String> {
        match &self.origin {
            Origin::Secret(secret) => SigningKey::derive(secret),
            Origin::SecretsManager { client, arn } => {
                let out = client
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot read the SET signing secret {arn} from Secrets Manager: {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                        )
                    })?;
                let secret = out
                    .secret_string()
                    .ok_or_else(|| format!("the secret {arn} holds no string"))?;
                SigningKey::derive(secret)
            }
        }
    }
}
