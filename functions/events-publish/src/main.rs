use directory::events;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    events::serve_stream().await
}
