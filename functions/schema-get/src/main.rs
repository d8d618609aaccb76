use directory::{openapi, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::serve(openapi::schema).await
}
