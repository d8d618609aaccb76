use directory::{oauth, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::serve(oauth::token).await
}
