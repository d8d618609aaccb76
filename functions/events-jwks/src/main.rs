use directory::{events, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::serve(events::jwks).await
}
