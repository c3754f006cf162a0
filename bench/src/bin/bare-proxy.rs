//! The floor for any proxy hop: hyper in, hyper out, nothing parsed, bodies streamed.
//!
//! `bare-proxy LISTEN UPSTREAM` (UPSTREAM like `127.0.0.1:9100`)

use std::convert::Infallible;

use http_body_util::{combinators::BoxBody, BodyExt};
use hyper::{body::Incoming, service::service_fn, Request, Response};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo},
};

type Body = BoxBody<bytes::Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9101".into());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:9100".into());
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move {
                    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    *req.uri_mut() = format!("http://{upstream}{path}")
                        .parse()
                        .unwrap_or_default();
                    let resp: Response<Body> = match client.request(req).await {
                        Ok(r) => r.map(BodyExt::boxed),
                        Err(_) => Response::builder()
                            .status(502)
                            .body(http_body_util::Empty::new().map_err(|e| match e {}).boxed())
                            .unwrap_or_default(),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
