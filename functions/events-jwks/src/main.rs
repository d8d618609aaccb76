use directory::{events, http};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::serve(events::jwks).await
}
