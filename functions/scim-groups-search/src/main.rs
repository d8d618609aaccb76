use directory::{http, scim};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::serve(scim::groups::search).await
}
