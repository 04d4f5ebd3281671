//! The `balance` function on AWS Lambda (API Gateway HTTP API): `functions::balance::app` under
//! `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::balance::app).await
}
