use directory::{admin_api, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::serve(admin_api::organizations_retrieve).await
}
