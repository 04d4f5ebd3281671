//! The `signup` function on AWS Lambda (API Gateway HTTP API): `functions::signup::app` under
//! `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::signup::app).await
}
