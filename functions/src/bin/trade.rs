//! The `trade` function on AWS Lambda (API Gateway HTTP API): `functions::trade::app` under
//! `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::trade::app).await
}
