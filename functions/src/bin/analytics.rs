//! The trader's statistics and P&L series (`/account/stats`, `/account/pnl`) on AWS Lambda
//! (API Gateway HTTP API): `functions::analytics::app` under `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::analytics::app).await
}
