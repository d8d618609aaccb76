use directory::{http, openapi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::serve(openapi::schema).await
}
