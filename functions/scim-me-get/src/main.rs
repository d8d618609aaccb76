use directory::{runtime, scim};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::serve(scim::me::get).await
}
