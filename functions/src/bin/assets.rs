//! The `assets` function on AWS Lambda (API Gateway HTTP API): `functions::assets::app` under
//! `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::assets::app).await
}
