//! The `candles` function on AWS Lambda (API Gateway HTTP API): `functions::candles::app`
//! under `lambda_http`. The trade consumer that fills the table runs in the local runner or
//! as the `candle-ingest` process.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::candles::app).await
}
