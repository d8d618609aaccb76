use directory::{admin_api, http};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::serve(admin_api::list).await
}
