//! The price-alert routes on AWS Lambda (API Gateway HTTP API): `functions::alerts::app` under
//! `lambda_http`. (The `alerts` binary is the long-lived worker that fires them.)

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::alerts::app).await
}
