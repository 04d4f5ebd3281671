//! The `signin` function on AWS Lambda (API Gateway HTTP API): `functions::signin::app` under
//! `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::signin::app).await
}
