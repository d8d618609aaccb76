//! A tenant's two credentials, obtained as a customer obtains them: the
//! org's SCIM token (what `usersctl org scim-token` mints), and an OAuth
//! access token granted by `POST /api/v1/oauth/token` to a client made for
//! the org (what `usersctl org oauth-client` prints). The isolation replays
//! run once with each (a test per credential, named for it).
use base64::Engine;
use directory::auth;
use directory::oauth;
use directory::store::{TenantOrg, TokenSpec};
use lambda_http::http::Method;

use crate::{Req, TestTable};

/// Which of a tenant's credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The org's long-lived SCIM bearer token.
    ScimToken,
    /// An access token from the client credentials grant.
    OAuth,
}

impl Credential {
    /// A new bearer token of this kind for `org` (read-write, no expiry but
    /// the access token's hour).
    pub async fn mint(self, t: &TestTable, org: &TenantOrg) -> String {
        match self {
            Credential::ScimToken => {
                let spec = TokenSpec {
                    read_only: false,
                    expires_at: None,
                };
                auth::mint_tenant_token(&t.store, org, &spec)
                    .await
                    .expect("mint the org's SCIM token")
            }
            Credential::OAuth => {
                let (id, secret) = oauth::new_client(&t.store, org, false)
                    .await
                    .expect("an OAuth client for the org");
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    enc(&id),
                    enc(&secret)
                ));
                let req = Req::new(Method::POST, "/api/v1/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", &format!("Basic {pair}"))
                    .raw_body("grant_type=client_credentials");
                let r = t.call(oauth::token, req.build()).await;
                r.expect(200)["access_token"]
                    .as_str()
                    .expect("an access token")
                    .to_string()
            }
        }
    }
}
