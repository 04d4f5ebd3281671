//! The hub's liveness probe for load balancers: plain HTTP on its own port (`WS_HEALTH_ADDR`,
//! off when unset), because the WebSocket port answers only upgrade requests and an ALB's
//! health check cannot send one. Every request gets `200 ok` while the process runs.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";

/// Answers every connection on `listener` with `200 ok`, until the task is dropped.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // The request itself does not matter; read what has arrived, answer, close.
            let mut buf = [0u8; 1024];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(2), tcp.read(&mut buf)).await;
            if matches!(read, Ok(Ok(_))) {
                let _ = tcp.write_all(ANSWER).await;
            }
            let _ = tcp.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn any_request_is_answered_200() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(super::serve(listener));
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        server.abort();
    }
}
