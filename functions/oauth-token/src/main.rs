use directory::{http, oauth};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::serve(oauth::token).await
}
